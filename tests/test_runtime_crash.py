"""Two runtime processes on one database, SIGKILLed again and again: no step lost, none doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO
from runtime_workflows import add_patient, chain, make_workflow, node, wait_until
from sqlalchemy import func, select

from app.runtime.control import start_run
from app.store.schema import runs, steps, tasks

RUNS = 120


def _spawn(db_url: str, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "app", "--db", db_url, "runtime", "--name", name],
                            cwd=REPO, env={**os.environ, "CLINICFLOW_LEASE_SECONDS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _open_runs(db) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(runs).where(runs.c.status != "completed")).scalar_one())


@pytest.mark.slow
def test_two_runtimes_killed_repeatedly_execute_every_step_exactly_once(db_url: str, db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("first", "action.create_task", title="first {{ run.id }}"),
        node("note", "action.add_note", text="run {{ run.id }}"),
        node("second", "action.create_task", title="second {{ run.id }}"),
    ], chain("start", "first", "note", "second"))
    patient = add_patient(db)
    rng = random.Random(7)
    processes = {name: _spawn(db_url, name) for name in ("a", "b")}
    kills = 0
    run_ids: list[int] = []
    deadline = time.monotonic() + 40
    try:
        while time.monotonic() < deadline and (len(run_ids) < RUNS or kills < 8):
            if len(run_ids) < RUNS:
                run_ids += [start_run(db, workflow_id, record=patient, actor="soak") for _ in range(12)]
            time.sleep(rng.uniform(0.8, 2.0))  # a fresh process needs about a second to start working
            name = rng.choice(sorted(processes))
            processes[name].send_signal(signal.SIGKILL)
            processes[name].wait(10)
            kills += 1
            processes[name] = _spawn(db_url, name)
        # No more kills: the survivors finish whatever the killed ones left.
        wait_until(lambda: _open_runs(db) == 0, timeout=60, what="every run to complete")
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGKILL)
            process.wait(10)
    with db.read() as conn:
        statuses = dict(conn.execute(select(runs.c.status, func.count()).group_by(runs.c.status)).all())
        titles = conn.execute(select(tasks.c.title)).scalars().all()
        per_node = conn.execute(select(steps.c.run_id, steps.c.node_id, func.count())
                                .group_by(steps.c.run_id, steps.c.node_id)).all()
        notes = conn.execute(select(func.count()).select_from(steps).where(steps.c.node_id == "note",
                                                                         steps.c.status == "completed")).scalar_one()
    assert kills >= 8
    assert statuses == {"completed": len(run_ids)}
    assert sorted(titles) == sorted([f"first {r}" for r in run_ids] + [f"second {r}" for r in run_ids])
    assert all(count == 1 for _, _, count in per_node)
    assert len(per_node) == 4 * len(run_ids) and notes == len(run_ids)
    from app.store.records import get_record

    with db.read() as conn:
        lines = get_record(conn, patient)["notes"].splitlines()
    assert sorted(line.split(" run ")[1] for line in lines) == sorted(str(r) for r in run_ids)
