"""Building blocks for the runtime tests: published workflows, records, and run inspection."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from app.api.runs import run_detail
from app.runtime import Runtime
from app.store.records import RecordRef, add_record
from app.store.schema import runs, tasks
from app.store.workflows import create_workflow, publish, set_enabled
from app.workflow import load_workflow


def node(node_id: str, type_: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": type_, "config": config}


def edge(source: str, target: str, port: str = "out") -> dict[str, Any]:
    return {"from": source, "to": target, "port": port}


def chain(*node_ids: str) -> list[dict[str, Any]]:
    return [edge(a, b) for a, b in itertools.pairwise(node_ids)]


def make_workflow(db: Any, nodes: list[dict[str, Any]], edges: list[dict[str, Any]], *, name: str = "Test",
                  limits: dict[str, int] | None = None, enabled: bool = True) -> int:
    data: dict[str, Any] = {"format": "clinicflow.workflow/1", "name": name, "nodes": nodes, "edges": edges}
    if limits:
        data["limits"] = limits
    with db.write() as conn:
        workflow_id = create_workflow(conn, load_workflow(data), "tester")
        publish(conn, workflow_id, "tester")
        if enabled:
            set_enabled(conn, workflow_id, True, "tester")
    return workflow_id


def add_patient(db: Any, **fields: Any) -> RecordRef:
    values = {"first_name": "Ann", "last_name": "Smith", **fields}
    with db.write() as conn:
        return add_record(conn, "patient", values, "tester")


def detail(db: Any, run_id: int) -> dict[str, Any]:
    return run_detail(db, run_id).to_json()


def status(db: Any, run_id: int) -> str:
    with db.read() as conn:
        return str(conn.execute(select(runs.c.status).where(runs.c.id == run_id)).scalar())


def step_path(db: Any, run_id: int) -> list[tuple[str, str]]:
    return [(s["node_id"], s["status"]) for s in detail(db, run_id)["steps"]]


def task_titles(db: Any) -> list[str]:
    with db.read() as conn:
        return list(conn.execute(select(tasks.c.title).order_by(tasks.c.id)).scalars())


def count_runs(db: Any, workflow_id: int | None = None) -> int:
    query = select(func.count()).select_from(runs)
    if workflow_id is not None:
        query = query.where(runs.c.workflow_id == workflow_id)
    with db.read() as conn:
        return int(conn.execute(query).scalar_one())


def drive(runtime: Runtime, done: Callable[[], bool], timeout: float = 15.0) -> None:
    """Run the runtime's due work until `done()` holds (waits fall due by themselves)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("the runtime did not get there in time")
        runtime.run_once()
        time.sleep(0.05)


def wait_until(done: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
