"""One measurement of Clinicflow or DBOS Transact on the same job, in a fresh process (called by bench/run.py).

`python bench/peer.py SYSTEM FIGURE URL N` prints one JSON object: {"samples": [...]} (latencies, ms)
or {"value": ...}. SYSTEM is clinicflow, dbos or naive; FIGURE is latency, throughput, execute,
waits_instant, one_step or waits_spread.

The job: a workflow of five steps, each a real write on the same practice-like tables (create a
task, add a line to the patient's notes, change the patient's mobile, another task, another note),
one patient per run. Clinicflow runs are started with `start_run`; DBOS workflows with
`DBOS.start_workflow`. DBOS's "transactional" steps (`@ds.transaction`) commit the write with the
step's checkpoint (exactly once, like Clinicflow's steps); its "plain" steps (`@DBOS.step`) commit
the write and then the checkpoint (at least once), the cheaper case the latency target names.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

FIVE_WRITES = {
    "format": "clinicflow.workflow/1", "name": "Bench five writes",
    "limits": {"max_actions_per_run": 1000},
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}},
        {"id": "task1", "type": "action.create_task", "config": {"title": "Call {{ patient.first_name }}"}},
        {"id": "note1", "type": "action.add_note", "config": {"text": "run {{ run.id }} a"}},
        {"id": "mark", "type": "action.update_record",
         "config": {"record": "patient", "field": "mobile", "value": "07700 {{ 900000 + run.id % 100000 }}"}},
        {"id": "task2", "type": "action.create_task", "config": {"title": "Confirm {{ patient.first_name }}"}},
        {"id": "note2", "type": "action.add_note", "config": {"text": "run {{ run.id }} b"}},
    ],
    "edges": [{"from": "start", "to": "task1"}, {"from": "task1", "to": "note1"}, {"from": "note1", "to": "mark"},
              {"from": "mark", "to": "task2"}, {"from": "task2", "to": "note2"}],
}
WRITE_STEPS = 5
LATENCY_GAP = 0.02  # runs started 20 ms apart: the reaction time of an idle engine, not a queue
# Latency is the steady state's: both systems first run this many workflows, not counted (the first
# starts of a process pay for compiling statements and, on PostgreSQL, each new server connection's
# first use of the tables and their triggers; the README gives that first-start cost on its own).
LATENCY_WARMUP = 5


def out(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


# --- Clinicflow ------------------------------------------------------------------------

def clinicflow(figure: str, url: str, n: int) -> dict[str, Any]:
    import engine as bench
    from sqlalchemy import func, select

    from app.runtime import Runtime
    from app.runtime.control import start_run
    from app.store import open_database
    from app.store.schema import runs, steps

    db = open_database(url)
    try:
        if figure in ("waits_instant", "waits_spread", "one_step"):
            return _clinicflow_waits(figure, db, n)
        workflow_id, refs = bench.setup(db, FIVE_WRITES, patients=n + LATENCY_WARMUP)
        if figure == "execute":
            bench.create_runs(db, workflow_id, refs, n)
            runtime = Runtime(db, "bench")
            started = time.perf_counter()
            executed = runtime.run_once()
            elapsed = time.perf_counter() - started
            assert executed == (WRITE_STEPS + 1) * n, executed
            return {"value": WRITE_STEPS * n / elapsed}
        runtime = Runtime(db, "bench")
        runtime.start()
        time.sleep(0.3)
        try:
            if figure == "latency":
                warm = []
                for ref in refs[n:]:
                    warm.append(start_run(db, workflow_id, record=ref, actor="bench"))
                    time.sleep(LATENCY_GAP)
                bench._wait_all_done(db, warm)
                run_ids, starts = [], {}
                for i in range(n):
                    t0 = time.time()
                    run_id = start_run(db, workflow_id, record=refs[i], actor="bench")
                    run_ids.append(run_id)
                    starts[run_id] = t0
                    time.sleep(LATENCY_GAP)
                bench._wait_all_done(db, run_ids)
                with db.read() as conn:
                    firsts = dict(conn.execute(select(steps.c.run_id, steps.c.started_at)
                                               .where(steps.c.node_id == "task1")).all())
                return {"samples": [(firsts[r].timestamp() - starts[r]) * 1000 for r in run_ids]}
            assert figure == "throughput"
            t0 = time.time()
            run_ids = [start_run(db, workflow_id, record=refs[i], actor="bench") for i in range(n)]
            bench._wait_all_done(db, run_ids, timeout=600)
            with db.read() as conn:
                last = conn.execute(select(func.max(runs.c.finished_at))).scalar_one()
                done = conn.execute(select(func.count()).select_from(runs)
                                    .where(runs.c.status == "completed")).scalar_one()
            assert done == n, done
            return {"value": WRITE_STEPS * n / (last.timestamp() - t0)}
        finally:
            runtime.stop()
    finally:
        db.dispose()


def _clinicflow_waits(figure: str, db: Any, n: int) -> dict[str, Any]:
    """Waits resumed at scale: all due at one instant (seconds to resume all), spread (lateness, ms);
    `one_step`: the seconds to execute n ready one-step runs (the instant figure's baseline)."""
    from datetime import timedelta

    import engine as bench
    from sqlalchemy import bindparam, func, select, update

    from app.runtime import Runtime
    from app.store.schema import patients, runs, steps
    from app.store.timeutil import parse_datetime, utcnow

    if figure == "one_step":
        workflow_id, refs = bench.setup(db, bench.ONE_STEP, patients=n)
        bench.create_runs(db, workflow_id, refs, n)
        started = time.perf_counter()
        Runtime(db, "bench").run_once()
        return {"value": time.perf_counter() - started}
    spread = 0.0 if figure == "waits_instant" else n / 167.0  # the 10,000 over 60 s is 167 per second
    workflow_id, refs = bench.setup(db, bench.WAIT_UNTIL_NOTES, patients=n)
    far = utcnow() + timedelta(hours=1)
    with db.write() as conn:
        conn.execute(update(patients).values(notes=far.isoformat()))
    bench.create_runs(db, workflow_id, refs, n)
    runtime = Runtime(db, "bench")
    runtime.run_once()  # every run now waits, an hour ahead
    with db.read() as conn:
        waiting = conn.execute(select(runs.c.id, steps.c.id, steps.c.output, runs.c.record_id)
                               .join(steps, steps.c.run_id == runs.c.id)
                               .where(runs.c.status == "waiting", steps.c.node_id == "pause")
                               .order_by(runs.c.id)).all()
    assert len(waiting) == n, len(waiting)
    # Then the due times are brought forward: the patients' notes the waits follow (a resumed
    # `until` wait computes its time again from them), then the runs' and the wait steps' times as
    # the waits would have written them over those notes. The notes go first, in the same
    # transaction: on PostgreSQL the record trigger wakes each follower to compute its time again
    # (due now), and the runs' due times written after it put them back, so both databases measure
    # waits falling due, not 2,000 record changes (SQLite's plain UPDATE wakes nobody);
    # bench/profile_waits.py measures the wake-ups on their own.
    first_due = utcnow() + timedelta(seconds=1.5)
    dues = [first_due + timedelta(seconds=spread * i / n) for i in range(n)]
    with db.write() as conn:
        conn.execute(update(patients).where(patients.c.id == bindparam("b_id")).values(notes=bindparam("notes")),
                     [{"b_id": record_id, "notes": due.isoformat()}
                      for (_, _, _, record_id), due in zip(waiting, dues, strict=True)])
        conn.execute(update(runs).where(runs.c.id == bindparam("b_id")).values(due_at=bindparam("due")),
                     [{"b_id": run_id, "due": due} for (run_id, _, _, _), due in zip(waiting, dues, strict=True)])
        conn.execute(update(steps).where(steps.c.id == bindparam("b_id")).values(output=bindparam("out")),
                     [{"b_id": step_id, "out": {**(output or {}), "resume_at": due.isoformat()}}
                      for (_, step_id, output, _), due in zip(waiting, dues, strict=True)])
    moved = utcnow()
    runtime.start()
    try:
        _wait_until_none_active(db)
    finally:
        runtime.stop()
    with db.read() as conn:
        outputs = conn.execute(select(steps.c.output).where(steps.c.node_id == "pause",
                                                            steps.c.status == "completed")).scalars().all()
        last = conn.execute(select(func.max(runs.c.finished_at))).scalar_one()
    assert len(outputs) == n, len(outputs)
    if figure == "waits_instant":
        return {"value": (last - first_due).total_seconds(), "lead_left": (first_due - moved).total_seconds()}
    return {"samples": [(parse_datetime(o["resumed_at"]) - parse_datetime(o["resume_at"])).total_seconds() * 1000
                        for o in outputs]}


def _wait_until_none_active(db: Any, timeout: float = 600) -> None:
    """Until no run of the waits' database is active. Every run there is the benchmark's, so one
    count a tenth of a second: the runtime measured shares this process (and its GIL) with it,
    and the baseline (`one_step`, `run_once`) has no watcher at all."""
    from sqlalchemy import func, select

    from app.store.schema import runs

    deadline = time.monotonic() + timeout
    active = select(func.count()).select_from(runs).where(runs.c.status.in_(("running", "waiting")))
    while time.monotonic() < deadline:
        with db.read() as conn:
            if not conn.execute(active).scalar_one():
                return
        time.sleep(0.1)
    raise TimeoutError("runs still active")


# --- the naive baseline (same effects, same durability, one commit per step) -----------

def naive(figure: str, url: str, n: int) -> dict[str, Any]:
    """Each step in its own transaction: its write, its step row, the run's cursor; COMMIT."""
    import engine as bench
    from sqlalchemy import insert, select, update

    from app.store import open_database
    from app.store.schema import patients, runs, steps, tasks
    from app.store.timeutil import utcnow

    assert figure == "execute"
    db = open_database(url)
    try:
        workflow_id, refs = bench.setup(db, FIVE_WRITES, patients=n)
        bench.create_runs(db, workflow_id, refs, n)
        with db.read() as conn:
            run_ids = list(conn.execute(select(runs.c.id).order_by(runs.c.id)).scalars())
        ins_step, ins_task = insert(steps), insert(tasks)
        upd_run = update(runs).where(runs.c.id == __import__("sqlalchemy").bindparam("b_id"))
        started = time.perf_counter()
        for run_id, ref in zip(run_ids, refs, strict=True):
            for seq in range(1, WRITE_STEPS + 1):
                now = utcnow()
                with db.write() as conn:
                    if seq in (1, 4):
                        conn.execute(ins_task, {"title": "Call P", "patient_id": ref.id, "status": "open",
                                                "created_by_run": run_id})
                    elif seq in (2, 5):
                        note = conn.execute(select(patients.c.notes).where(patients.c.id == ref.id)).scalar()
                        conn.execute(update(patients).where(patients.c.id == ref.id)
                                     .values(notes=((note + "\n") if note else "") + f"run {run_id}"))
                    else:
                        conn.execute(update(patients).where(patients.c.id == ref.id).values(mobile="07700 900001"))
                    conn.execute(ins_step, {"run_id": run_id, "seq": seq, "node_id": f"n{seq}",
                                            "node_type": "action.create_task", "attempt": 1, "status": "completed",
                                            "input": {}, "output": {}, "started_at": now, "finished_at": now})
                    conn.execute(upd_run, {"b_id": run_id, "state": {"seq": seq},
                                           "status": "completed" if seq == WRITE_STEPS else "running",
                                           "updated_at": now})
        return {"value": WRITE_STEPS * n / (time.perf_counter() - started)}
    finally:
        db.dispose()


# --- DBOS Transact ---------------------------------------------------------------------

def dbos(figure: str, url: str, n: int) -> dict[str, Any]:
    import sqlalchemy as sa
    from dbos import DBOS, SQLAlchemyDatasource

    postgresql = url.startswith("postgresql")
    if postgresql:
        schema = f"dbos_bench_{uuid.uuid4().hex[:8]}"
        app_schema = f"dbos_app_{uuid.uuid4().hex[:8]}"
        base = url.split("?")[0].replace("postgresql+psycopg://", "postgresql://", 1)
        sys_url = app_url = base
        admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{app_schema}"'))
        app_engine = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1),
                                      connect_args={"options": f"-csearch_path={app_schema}"}, pool_size=20,
                                      max_overflow=80, pool_timeout=300)
    else:
        folder = Path(url.removeprefix("sqlite:///")).parent
        tag = uuid.uuid4().hex[:8]
        sys_url = f"sqlite:///{folder / f'dbos-sys-{tag}.sqlite3'}"
        app_url = f"sqlite:///{folder / f'dbos-app-{tag}.sqlite3'}"
        # DBOS runs every started workflow on its own thread: room for all of them.
        app_engine = sa.create_engine(app_url, pool_size=20, max_overflow=1000, pool_timeout=300)
        schema = None
    meta = sa.MetaData()
    b_patients = sa.Table("b_patients", meta, sa.Column("id", sa.Integer, primary_key=True),
                          sa.Column("first_name", sa.String(200)), sa.Column("mobile", sa.String(64)),
                          sa.Column("notes", sa.Text))
    b_tasks = sa.Table("b_tasks", meta, sa.Column("id", sa.Integer, primary_key=True),
                       sa.Column("title", sa.String(500)), sa.Column("patient_id", sa.Integer),
                       sa.Column("status", sa.String(16)))
    meta.create_all(app_engine)
    with app_engine.begin() as conn:
        conn.execute(sa.insert(b_patients), [{"id": i + 1, "first_name": f"P{i}"} for i in range(n + LATENCY_WARMUP)])

    config: dict[str, Any] = {"name": "bench", "system_database_url": sys_url, "log_level": "WARNING"}
    if schema:
        config["dbos_system_schema"] = schema
    DBOS(config=config)  # type: ignore[arg-type]
    if postgresql:
        ds = SQLAlchemyDatasource.create(app_url, engine=app_engine, schema=app_schema)
    else:
        ds = SQLAlchemyDatasource.create(app_url, engine=app_engine)
    first_step: dict[str, float] = {}

    def write(conn: Any, kind: int, patient: int) -> None:
        if kind in (1, 4):
            conn.execute(sa.insert(b_tasks).values(title="Call P", patient_id=patient, status="open"))
        elif kind in (2, 5):
            note = conn.execute(sa.select(b_patients.c.notes).where(b_patients.c.id == patient)).scalar()
            conn.execute(sa.update(b_patients).where(b_patients.c.id == patient)
                         .values(notes=((note + "\n") if note else "") + "run"))
        else:
            conn.execute(sa.update(b_patients).where(b_patients.c.id == patient).values(mobile="07700 900001"))

    @DBOS.step()
    def plain_step(kind: int, patient: int) -> None:
        if kind == 1:
            first_step.setdefault(DBOS.workflow_id or "", time.time())
        with app_engine.begin() as conn:
            write(conn, kind, patient)

    @ds.transaction()
    def tx_step(kind: int, patient: int) -> None:
        write(ds.sql_session(), kind, patient)

    @DBOS.workflow()
    def plain_workflow(patient: int) -> None:
        for kind in range(1, WRITE_STEPS + 1):
            plain_step(kind, patient)

    @DBOS.workflow()
    def tx_workflow(patient: int) -> None:
        for kind in range(1, WRITE_STEPS + 1):
            tx_step(kind, patient)

    DBOS.launch()
    try:
        if figure == "latency":
            for i in range(n, n + LATENCY_WARMUP):
                DBOS.start_workflow(plain_workflow, i + 1).get_result()
                time.sleep(LATENCY_GAP)
            handles, starts = [], {}
            for i in range(n):
                t0 = time.time()
                handle = DBOS.start_workflow(plain_workflow, i + 1)
                starts[handle.workflow_id] = t0
                handles.append(handle)
                time.sleep(LATENCY_GAP)
            for handle in handles:
                handle.get_result()
            return {"samples": [(first_step[h.workflow_id] - starts[h.workflow_id]) * 1000 for h in handles]}
        assert figure == "throughput"
        t0 = time.time()
        handles = [DBOS.start_workflow(tx_workflow, i + 1) for i in range(n)]
        for handle in handles:
            handle.get_result()
        elapsed = time.time() - t0
        with app_engine.connect() as conn:
            tasks_made = conn.execute(sa.select(sa.func.count()).select_from(b_tasks)).scalar_one()
        assert tasks_made == 2 * n, tasks_made
        return {"value": WRITE_STEPS * n / elapsed}
    finally:
        DBOS.destroy()
        app_engine.dispose()
        if postgresql:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{app_schema}" CASCADE'))
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()
        else:
            for name in (sys_url, app_url):
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(name.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)


def main() -> int:
    system, figure, url, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    import logging

    logging.disable(logging.WARNING)
    measure = {"clinicflow": clinicflow, "dbos": dbos, "naive": naive}[system]
    out(measure(figure, url, n))
    # DBOS leaves non-daemon threads behind on some paths; the figure is out, so leave at once.
    sys.stdout.flush()
    threading.Thread(target=lambda: None).start()
    import os

    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
