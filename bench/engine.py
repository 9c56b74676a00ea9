"""Engine benchmarks: throughput against a commit-per-step loop, runtimes in parallel, latency,
wait lateness and memory. Each function measures the project and its baseline in one go."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text, update

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from app.runtime import Runtime  # noqa: E402
from app.runtime.control import create_run, start_run  # noqa: E402
from app.store import open_database  # noqa: E402
from app.store.database import Database  # noqa: E402
from app.store.records import RecordRef, add_record  # noqa: E402
from app.store.schema import runs, steps  # noqa: E402
from app.store.settings import effective_limits  # noqa: E402
from app.store.timeutil import utcnow  # noqa: E402
from app.store.workflows import create_workflow, get_version, publish, set_enabled  # noqa: E402
from app.workflow import load_workflow  # noqa: E402

FIVE_NODES = {
    "format": "clinicflow.workflow/1", "name": "Bench five",
    "limits": {"max_actions_per_run": 1000},
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}},
        {"id": "check", "type": "logic.condition",
         "config": {"rules": [{"field": "patient.last_name", "op": "is_set"}]}},
        {"id": "task", "type": "action.create_task", "config": {"title": "Call {{ patient.first_name }}"}},
        {"id": "mark", "type": "action.update_record",
         "config": {"record": "patient", "field": "mobile", "value": "07700 {{ 900000 + run.id % 100000 }}"}},
        {"id": "note", "type": "action.add_note", "config": {"text": "run {{ run.id }}"}},
    ],
    "edges": [{"from": "start", "to": "check"}, {"from": "check", "port": "true", "to": "task"},
              {"from": "task", "to": "mark"}, {"from": "mark", "to": "note"}],
}


WAIT_UNTIL_NOTES = {
    "format": "clinicflow.workflow/1", "name": "Bench wait",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}},
        {"id": "pause", "type": "logic.wait", "config": {"until": "{{ patient.notes }}"}},
        {"id": "task", "type": "action.create_task", "config": {"title": "after"}},
    ],
    "edges": [{"from": "start", "to": "pause"}, {"from": "pause", "to": "task"}],
}


ONE_STEP = {
    "format": "clinicflow.workflow/1", "name": "Bench one",
    "nodes": [{"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}},
              {"id": "task", "type": "action.create_task", "config": {"title": "t"}}],
    "edges": [{"from": "start", "to": "task"}],
}


# --- databases -------------------------------------------------------------------------

@contextmanager
def sqlite_database(directory: Path) -> Iterator[str]:
    path = directory / f"bench-{uuid.uuid4().hex[:8]}.sqlite3"
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextmanager
def pg_database(url: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def setup(db: Database, definition: dict[str, Any], patients: int = 1) -> tuple[int, list[RecordRef]]:
    with db.write() as conn:
        workflow_id = create_workflow(conn, load_workflow(definition), "bench")
        publish(conn, workflow_id, "bench")
        set_enabled(conn, workflow_id, True, "bench")
        refs = [add_record(conn, "patient", {"first_name": f"P{i}", "last_name": "Bench"}, "bench")
                for i in range(patients)]
    return workflow_id, refs


def create_runs(db: Database, workflow_id: int, refs: list[RecordRef], count: int) -> None:
    """Ready runs created in bulk (the benchmark measures executing them, not starting them)."""
    with db.write() as conn:
        workflow = get_version(conn, workflow_id, 1)
        limits = effective_limits(conn, workflow.limits.model_dump() if workflow.limits else None)
        now = utcnow()
        for i in range(count):
            create_run(conn, workflow_id, 1, workflow, trigger_kind="manual", record=refs[i % len(refs)],
                       payload=None, actor="bench", now=now, limits=limits, notify=False)


def _processing_rate(db: Database) -> tuple[int, float]:
    """Steps and the seconds from the first step's start to the last step's end (from the database)."""
    with db.read() as conn:
        count, first, last = conn.execute(select(func.count(), func.min(steps.c.started_at),
                                                 func.max(steps.c.finished_at))).one()
    return int(count), max((last - first).total_seconds(), 1e-9)


# --- throughput ------------------------------------------------------------------------

def naive_steps_per_second(db: Database, count: int) -> float:
    """The baseline: one transaction per step (INSERT a step row, UPDATE the run row, COMMIT)."""
    with db.write() as conn:
        run_id = conn.execute(select(func.max(runs.c.id))).scalar_one()
    started = time.perf_counter()
    for i in range(count):
        now = utcnow()
        with db.write() as conn:
            conn.execute(insert(steps).values(run_id=run_id, seq=100000 + i, node_id="naive",
                                              node_type="action.create_task", attempt=1, status="completed",
                                              input={}, output={}, started_at=now, finished_at=now))
            conn.execute(update(runs).where(runs.c.id == run_id).values(state={"seq": i}, updated_at=now))
    return count / (time.perf_counter() - started)


def engine_throughput(url: str, runs_count: int, baseline_steps: int) -> dict[str, Any]:
    db = open_database(url)
    try:
        # Mostly one run per patient, as for reminders (runs of one patient queue on its row).
        workflow_id, refs = setup(db, FIVE_NODES, patients=min(runs_count, 1000))
        create_runs(db, workflow_id, refs, runs_count)
        runtime = Runtime(db, "bench")
        started = time.perf_counter()
        executed = runtime.run_once()
        elapsed = time.perf_counter() - started
        with db.read() as conn:
            done = conn.execute(select(func.count()).select_from(runs).where(runs.c.status == "completed")).scalar_one()
        assert done == runs_count and executed == 5 * runs_count, (done, executed)
        engine_rate = executed / elapsed
        baseline = naive_steps_per_second(db, baseline_steps)
    finally:
        db.dispose()
    return {"value": engine_rate, "baseline": baseline}


def _worker(url: str, name: str, go: Any, ready: Any) -> None:
    db = open_database(url, migrate=False)
    runtime = Runtime(db, name)
    ready.set()
    go.wait()
    runtime.run_once()
    db.dispose()


def parallel_runtimes(url: str, runs_count: int) -> dict[str, Any]:
    """Steps per second with one runtime process, then with two, on fresh equal databases."""
    rates = []
    for processes in (1, 2):
        with pg_database(url.split("?")[0]) as fresh:
            db = open_database(fresh)
            workflow_id, refs = setup(db, FIVE_NODES, patients=min(runs_count, 1000))
            create_runs(db, workflow_id, refs, runs_count)
            ctx = multiprocessing.get_context("spawn")
            go = ctx.Event()
            readies = [ctx.Event() for _ in range(processes)]
            workers = [ctx.Process(target=_worker, args=(fresh, f"p{i}", go, readies[i])) for i in range(processes)]
            for worker in workers:
                worker.start()
            for ready in readies:
                ready.wait(120)
            go.set()
            for worker in workers:
                worker.join(600)
            count, seconds = _processing_rate(db)
            assert count == 5 * runs_count, count
            rates.append(count / seconds)
            db.dispose()
    return {"value": rates[1], "baseline": rates[0]}


# --- latency ---------------------------------------------------------------------------

def _first_step_latencies(db: Database, run_ids: list[int]) -> list[float]:
    with db.read() as conn:
        rows = conn.execute(select(runs.c.id, runs.c.triggered_at, func.min(steps.c.started_at))
                            .join(steps, steps.c.run_id == runs.c.id).where(runs.c.id.in_(run_ids))
                            .group_by(runs.c.id, runs.c.triggered_at)).all()
    assert len(rows) == len(run_ids)
    return [(first - triggered).total_seconds() * 1000 for _, triggered, first in rows]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def latency_in_process(url: str, samples: int) -> list[float]:
    db = open_database(url)
    runtime = Runtime(db, "latency")
    try:
        workflow_id, refs = setup(db, ONE_STEP)
        runtime.start()
        time.sleep(0.5)
        return _sample_latencies(db, workflow_id, refs[0], samples)
    finally:
        runtime.stop()
        db.dispose()


def _sample_latencies(db: Database, workflow_id: int, ref: RecordRef, samples: int) -> list[float]:
    """Start runs 20 ms apart and return each one's trigger-to-first-step latency (ms)."""
    run_ids = []
    for _ in range(samples):
        run_ids.append(start_run(db, workflow_id, record=ref, actor="bench"))
        time.sleep(0.02)
    _wait_all_done(db, run_ids)
    return _first_step_latencies(db, run_ids)


def latency_cross_process(url: str, samples: int) -> list[float]:
    db = open_database(url)
    process = subprocess.Popen([sys.executable, "-m", "app", "--db", url, "runtime", "--name", "latency-proc"],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        workflow_id, refs = setup(db, ONE_STEP)
        warm = start_run(db, workflow_id, record=refs[0], actor="bench")
        _wait_all_done(db, [warm], timeout=60)
        return _sample_latencies(db, workflow_id, refs[0], samples)
    finally:
        process.terminate()
        process.wait(30)
        db.dispose()


def _wait_all_done(db: Database, run_ids: list[int], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.read() as conn:
            left = conn.execute(select(func.count()).select_from(runs).where(
                runs.c.id.in_(run_ids), runs.c.status.in_(("running", "waiting")))).scalar_one()
        if not left:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{left} run(s) still not done")


def commit_latency(url: str, samples: int) -> list[float]:
    """A durable INSERT + COMMIT of a run-sized row: the floor under any trigger latency."""
    db = open_database(url)
    try:
        with db.write() as conn:
            run_id = conn.execute(select(func.max(runs.c.id))).scalar()
        values = []
        for _ in range(samples):
            started = time.perf_counter()
            with db.write() as conn:
                conn.execute(update(runs).where(runs.c.id == run_id).values(updated_at=utcnow()))
            values.append((time.perf_counter() - started) * 1000)
        return values
    finally:
        db.dispose()


# --- waits -----------------------------------------------------------------------------

def wait_lateness(url: str, waits: int, lead: float = 3.0, spread: float = 5.0) -> list[float]:
    """`waits` runs waiting until times spread over `spread` seconds (starting `lead` seconds
    from now); lateness = when the wait resumed - when it was due, in ms."""
    from app.store.schema import patients
    from app.store.timeutil import parse_datetime

    db = open_database(url)
    runtime = Runtime(db, "waits")
    try:
        workflow_id, refs = setup(db, WAIT_UNTIL_NOTES, patients=waits)
        first_due = utcnow() + timedelta(seconds=lead)
        with db.write() as conn:
            for i, ref in enumerate(refs):
                due = first_due + timedelta(seconds=spread * i / waits)
                conn.execute(update(patients).where(patients.c.id == ref.id).values(notes=due.isoformat()))
        create_runs(db, workflow_id, refs, waits)
        with db.read() as conn:
            run_ids = list(conn.execute(select(runs.c.id)).scalars())
        runtime.start()
        _wait_all_done(db, run_ids, timeout=300)
        with db.read() as conn:
            outputs = conn.execute(select(steps.c.output).where(steps.c.node_id == "pause",
                                                                steps.c.status == "completed")).scalars().all()
        assert len(outputs) == waits
        return [(parse_datetime(o["resumed_at"]) - parse_datetime(o["resume_at"])).total_seconds() * 1000
                for o in outputs]
    finally:
        runtime.stop()
        db.dispose()


# --- memory ----------------------------------------------------------------------------

def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory_growth(url: str, total_runs: int, chunk: int = 2000) -> tuple[float, float]:
    """RSS after a warm-up chunk, and after `total_runs` more runs of the five-node workflow."""
    import gc

    db = open_database(url)
    runtime = Runtime(db, "memory")
    events = []
    runtime.subscribe(lambda e: events.clear() if len(events) > 1000 else events.append(e.kind))
    try:
        workflow_id, refs = setup(db, FIVE_NODES, patients=100)
        create_runs(db, workflow_id, refs, chunk)
        runtime.run_once()
        gc.collect()
        before = rss_mb()
        done = 0
        while done < total_runs:
            create_runs(db, workflow_id, refs, chunk)
            runtime.run_once()
            done += chunk
            with db.write() as conn:  # keep the patients' notes from growing without bound
                from app.store.schema import patients

                conn.execute(update(patients).values(notes=None))
        gc.collect()
        return before, rss_mb()
    finally:
        db.dispose()


__all__ = [
    "commit_latency", "engine_throughput", "latency_cross_process", "latency_in_process", "memory_growth",
    "parallel_runtimes", "percentile", "pg_database", "sqlite_database", "wait_lateness",
]
