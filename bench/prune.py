"""Retention on 1,000,000 old runs (SQLite): total time of `maintenance prune`, the longest
single transaction (how long the write lock is held at once), and how long a run started
while pruning waits for the lock (a person's action, the runtime's batches).

Each run has two steps (a trigger and a message with input and output). Prints one JSON
object per line: {"bench", "value", "unit", ...}.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RUNS = int(os.environ.get("CLINICFLOW_BENCH_RUNS", "1000000"))


def fill(path: Path, count: int) -> None:
    from app.store import open_database

    open_database(f"sqlite:///{path}").dispose()
    con = sqlite3.connect(path)
    stamp = "2023-01-01 00:00:00.000000"
    draft = json.dumps({"format": "clinicflow.workflow/1", "name": "Bench", "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}}], "edges": []})
    con.execute("INSERT INTO workflows (name, draft, enabled, archived, created_at, updated_at) "
                "VALUES ('Recall reminder', ?, 1, 0, ?, ?)", (draft, stamp, stamp))
    base = datetime(2022, 1, 1, tzinfo=UTC)
    payload = json.dumps({"to": "ann@example.org", "subject": "Your recall", "body": "Dear Ann, " + "x" * 200})
    chunk = 20_000
    for first in range(0, count, chunk):
        last = min(count, first + chunk)
        runs, steps = [], []
        for i in range(first, last):
            at = (base + timedelta(seconds=30 * i)).strftime("%Y-%m-%d %H:%M:%S.%f")
            runs.append((i + 1, 1, 1, "completed", "manual", "patient", 1 + i % 5000, "bench", at, at, at))
            steps.append((i + 1, 0, "start", "trigger.manual", 1, "completed", "{}", "{}", at, at))
            steps.append((i + 1, 1, "mail", "action.send_email", 1, "completed", payload, payload, at, at))
        con.executemany("INSERT INTO runs (id, workflow_id, version, status, trigger_kind, record_type, record_id, "
                        "started_by, triggered_at, finished_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", runs)
        con.executemany("INSERT INTO steps (run_id, seq, node_id, node_type, attempt, status, input, output, "
                        "started_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?)", steps)
        con.commit()
    con.execute("ANALYZE")
    con.commit()
    con.close()


def main() -> None:
    from app.runtime.retention import PRUNE_BATCH_RUNS, prune
    from app.store import open_database

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "old.sqlite3"
        started = time.perf_counter()
        fill(path, RUNS)
        print(json.dumps({"note": f"{RUNS} runs ({2 * RUNS} steps) inserted in {time.perf_counter() - started:.1f} s"}),
              file=sys.stderr, flush=True)
        db = open_database(f"sqlite:///{path}")
        # Meanwhile, another writer (as a person's retry or the runtime's batch) writes every 50 ms:
        # how long does it wait for the lock?
        waits: list[float] = []
        stop = threading.Event()

        def writer() -> None:
            from app.store.settings import set_setting

            while not stop.is_set():
                t = time.perf_counter()
                with db.write() as conn:
                    set_setting(conn, "bench.touch", t)
                waits.append(time.perf_counter() - t)
                stop.wait(0.05)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        result = prune(db, now=datetime(2030, 1, 1, tzinfo=UTC), days=730)
        stop.set()
        thread.join()
        assert result.runs == RUNS, result
        db.dispose()
    for bench, value, unit in (
        ("prune_total", result.total_seconds, "s"),
        ("prune_longest_transaction", result.longest_batch_seconds * 1000, "ms"),
        ("prune_runs_per_transaction", PRUNE_BATCH_RUNS, "runs"),
        ("prune_concurrent_write_wait_max", max(waits) * 1000, "ms"),
        ("prune_concurrent_write_wait_median", statistics.median(waits) * 1000, "ms"),
    ):
        print(json.dumps({"bench": f"{bench}_{RUNS}", "value": round(value, 2), "unit": unit}), flush=True)


if __name__ == "__main__":
    main()
