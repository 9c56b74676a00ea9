"""Starts arriving from another process (the api's `start_run`, as the app and the command line
start runs) while the runtime process is SIGKILLed and restarted: every started run completes
exactly once, with exactly its effects, and no run exists that a start did not return."""

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

from app.store.records import get_record
from app.store.schema import runs, steps, tasks

STARTS = 150

# The starting process: one `start_run` after another through the api, each id printed once the
# start has returned (the run is durably created then). A start refused because the database was
# busy is printed as such and tried again: it created nothing.
STARTER = """
import sys, time
from app.api.runs import start_run
from app.store import open_database
from app.store.records import RecordRef

db = open_database(sys.argv[1], migrate=False)
workflow_id, patient, count = int(sys.argv[2]), RecordRef("patient", int(sys.argv[3])), int(sys.argv[4])
started = 0
while started < count:
    try:
        run_id = start_run(db, workflow_id, record=patient, actor="storm")
    except Exception as exc:
        print("refused", type(exc).__name__, flush=True)
        time.sleep(0.05)
        continue
    print("started", run_id, flush=True)
    started += 1
    time.sleep(0.01)
db.dispose()
"""


def _spawn_runtime(db_url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "app", "--db", db_url, "runtime", "--name", "storm"],
                            cwd=REPO, env={**os.environ, "CLINICFLOW_LEASE_SECONDS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _open_runs(db) -> int:
    with db.read() as conn:
        query = select(func.count()).select_from(runs).where(runs.c.status != "completed")
        return int(conn.execute(query).scalar_one())


@pytest.mark.slow
def test_starts_from_another_process_survive_a_runtime_killed_again_and_again(db_url: str, db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("first", "action.create_task", title="first {{ run.id }}"),
        node("note", "action.add_note", text="run {{ run.id }}"),
        node("second", "action.create_task", title="second {{ run.id }}"),
    ], chain("start", "first", "note", "second"))
    patient = add_patient(db)
    starter = subprocess.Popen([sys.executable, "-c", STARTER, db_url, str(workflow_id), str(patient.id), str(STARTS)],
                               cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    runtime = _spawn_runtime(db_url)
    rng = random.Random(11)
    kills = 0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (starter.poll() is None or kills < 5):
            time.sleep(rng.uniform(0.6, 1.5))  # a fresh runtime needs about a second to start working
            runtime.send_signal(signal.SIGKILL)
            runtime.wait(10)
            kills += 1
            runtime = _spawn_runtime(db_url)
        out, err = starter.communicate(timeout=60)
        assert starter.returncode == 0, err
        # No more kills: the last runtime finishes whatever the killed ones left.
        wait_until(lambda: _open_runs(db) == 0, timeout=60, what="every run to complete")
    finally:
        runtime.send_signal(signal.SIGKILL)
        runtime.wait(10)
        if starter.poll() is None:
            starter.kill()
    started = [int(line.split()[1]) for line in out.splitlines() if line.startswith("started ")]
    assert kills >= 5
    assert len(started) == STARTS and len(set(started)) == STARTS
    with db.read() as conn:
        statuses = dict(conn.execute(select(runs.c.status, func.count()).group_by(runs.c.status)).all())
        all_runs = conn.execute(select(runs.c.id)).scalars().all()
        titles = conn.execute(select(tasks.c.title)).scalars().all()
        per_node = conn.execute(select(steps.c.run_id, steps.c.node_id, func.count())
                                .group_by(steps.c.run_id, steps.c.node_id)).all()
        lines = get_record(conn, patient)["notes"].splitlines()
    # Every run a start returned exists and completed; none exists that no start returned.
    assert sorted(all_runs) == sorted(started)
    assert statuses == {"completed": STARTS}
    # Exactly once: each node one step per run, each task and note line once.
    assert all(count == 1 for _, _, count in per_node) and len(per_node) == 4 * STARTS
    assert sorted(titles) == sorted([f"first {r}" for r in started] + [f"second {r}" for r in started])
    assert sorted(line.split(" run ")[1] for line in lines) == sorted(str(r) for r in started)
