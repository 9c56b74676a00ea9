"""Statements, round trips and time of resuming waits at scale (the waits benchmark's two phases).

`python bench/profile_waits.py URL [WAITS]` makes WAITS runs wait an hour on `{{ patient.notes }}`,
then brings their times forward as bench/peer.py does (runs, wait steps and the patients' notes,
so on PostgreSQL the record trigger wakes every follower), and measures with `Runtime.run_once`:
- `woken`: the waits the record change woke computing their time again (PostgreSQL only);
- `resumed`: every wait falling due at once (the engine's clock moved past their times);
- `one_step`: as many ready one-step runs executed (the benchmark's baseline), counted only.
Each phase is counted (an SQLAlchemy `before_cursor_execute` listener, as bench/profile_steps.py)
on one set of waits and profiled (cProfile, top functions by cumulative time) on a second.
"""

from __future__ import annotations

import cProfile
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine as bench
from profile_steps import Counting, top
from sqlalchemy import bindparam, select, update

from app.runtime import Runtime
from app.store import open_database
from app.store.database import Database
from app.store.schema import patients, runs, steps
from app.store.timeutil import utcnow

LEAD = timedelta(seconds=60)   # the waits' new times: after the `woken` phase, before `resumed`


def make_waits(db: Database, workflow_id: int, refs: list[Any]) -> None:
    """Every patient's run waits an hour, then the times are brought forward to now + LEAD."""
    far = utcnow() + timedelta(hours=1)
    with db.write() as conn:
        conn.execute(update(patients).values(notes=far.isoformat()))
    bench.create_runs(db, workflow_id, refs, len(refs))
    Runtime(db, "setup").run_once()
    with db.read() as conn:
        waiting = conn.execute(select(runs.c.id, steps.c.id, steps.c.output, runs.c.record_id)
                               .join(steps, steps.c.run_id == runs.c.id)
                               .where(runs.c.status == "waiting", steps.c.node_id == "pause")).all()
    due = utcnow() + LEAD
    with db.write() as conn:
        conn.execute(update(runs).where(runs.c.id == bindparam("b_id")).values(due_at=bindparam("due")),
                     [{"b_id": run_id, "due": due} for run_id, _, _, _ in waiting])
        conn.execute(update(steps).where(steps.c.id == bindparam("b_id")).values(output=bindparam("out")),
                     [{"b_id": step_id, "out": {**(output or {}), "resume_at": due.isoformat()}}
                      for _, step_id, output, _ in waiting])
        conn.execute(update(patients).where(patients.c.id == bindparam("b_id")).values(notes=bindparam("n")),
                     [{"b_id": record_id, "n": due.isoformat()} for _, _, _, record_id in waiting])


def phase(db: Database, counting: Counting | None, profile: cProfile.Profile | None, later: bool) -> dict[str, Any]:
    runtime = Runtime(db, "bench", now=(lambda: utcnow() + 2 * LEAD) if later else utcnow)
    if profile is not None:
        profile.enable()
    started = time.perf_counter()
    executed = runtime.run_once()
    elapsed = time.perf_counter() - started
    if profile is not None:
        profile.disable()
    result: dict[str, Any] = {"seconds": round(elapsed, 3), "steps": executed}
    if counting is not None:
        result.update(counting.reset())
    return result


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else None
    waits = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    folder = Path(tempfile.mkdtemp(prefix="clinicflow-profile-"))
    report: dict[str, Any] = {"waits": waits}
    profiles: dict[str, str] = {}
    for profiled in (False, True):
        context = bench.sqlite_database(folder) if url in (None, "sqlite") else bench.pg_database(url)
        with context as real_url:
            db = open_database(real_url)
            workflow_id, refs = bench.setup(db, bench.WAIT_UNTIL_NOTES, patients=waits)
            make_waits(db, workflow_id, refs)
            counting = None if profiled else Counting(db.engine)
            for name, later in (("woken", False), ("resumed", True)):
                profile = cProfile.Profile() if profiled else None
                result = phase(db, counting, profile, later)
                if profile is not None:
                    profiles[name] = top(profile, 30)
                    report[f"{name}_profiled_seconds"] = result["seconds"]
                else:
                    report[name] = result
            db.dispose()
    context = bench.sqlite_database(folder) if url in (None, "sqlite") else bench.pg_database(url)
    with context as real_url:
        db = open_database(real_url)
        workflow_id, refs = bench.setup(db, bench.ONE_STEP, patients=waits)
        bench.create_runs(db, workflow_id, refs, waits)
        report["one_step"] = phase(db, Counting(db.engine), None, False)
        db.dispose()
    folder.rmdir()
    print(json.dumps(report, indent=1))
    for name, text in profiles.items():
        print(f"--- {name}, cumulative ---")
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
