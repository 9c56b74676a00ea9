"""Runs tab filters at 10,000 and 1,000,000 runs: the date filter and the record search
(a reference and a patient's name) must cost the same at both sizes (ratio <= 1.5, issue 13).

Each measure is `api.runs.count_runs` + the first page (`runs_page`, 100 rows), as the Runs
tab does when a filter changes; the median of 7. The filtered set is the same size in both
databases (a patient with 30 runs; a day with 500), the rest of the table grows 100-fold.
Prints one JSON object per line: {"bench", "value", "unit", "baseline", "ratio", "target"}.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SIZES = tuple(int(n) for n in os.environ.get("CLINICFLOW_BENCH_SIZES", "10000,1000000").split(","))
PATIENTS = 5000
TARGET_RUNS = 30
DAY_RUNS = 500
BASE = datetime(2024, 1, 1, tzinfo=UTC)
DAY = datetime(2026, 6, 1, tzinfo=UTC)


def fill(path: Path, count: int) -> None:
    from app.store import open_database

    open_database(f"sqlite:///{path}").dispose()
    con = sqlite3.connect(path)
    stamp = "2024-01-01 00:00:00.000000"
    draft = json.dumps({"format": "clinicflow.workflow/1", "name": "Bench", "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}}], "edges": []})
    con.execute("INSERT INTO workflows (name, draft, enabled, archived, created_at, updated_at) "
                "VALUES ('Recall reminder', ?, 1, 0, ?, ?)", (draft, stamp, stamp))
    con.executemany("INSERT INTO patients (first_name, last_name, email, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                    [(f"P{i}", "Quill" if i == 1 else f"Surname{i}", f"p{i}@example.org", stamp, stamp)
                     for i in range(1, PATIENTS + 1)])
    statuses = ("completed",) * 6 + ("failed", "cancelled", "waiting", "running")
    def at(i: int) -> str:
        # Ids follow time as in a real practice; the date filter's day holds DAY_RUNS runs in
        # the middle of the table (a day months ago, so newest-first scans pass half the table).
        middle = count // 2
        if i < middle:
            moment = DAY - timedelta(days=1) - (middle - i) * (DAY - BASE) / middle
        elif i < middle + DAY_RUNS:
            moment = DAY + timedelta(seconds=(i - middle) * 86400 / DAY_RUNS)
        else:
            moment = DAY + timedelta(days=2, seconds=(i - middle) * 60)
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")

    def rows(first: int, last: int) -> Any:
        for i in range(first, last):
            status = statuses[i % len(statuses)]
            when = at(i)
            # Patient 1 (Quill) has exactly TARGET_RUNS runs at every size.
            patient = 1 if i % (count // TARGET_RUNS) == 7 else 2 + i % (PATIENTS - 1)
            yield (1, 1, status, "manual", "patient", patient, "bench", when,
                   None if status in ("waiting", "running") else when, when,
                   "NoMobile" if status == "failed" else None)

    chunk = 50_000
    for first in range(0, count, chunk):
        con.executemany(
            "INSERT INTO runs (workflow_id, version, status, trigger_kind, record_type, record_id, started_by, "
            "triggered_at, finished_at, updated_at, error_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(first, min(count, first + chunk)))
        con.commit()
    con.execute("ANALYZE")
    con.commit()
    con.close()


def measure(db: Any, flt: Any) -> tuple[float, int]:
    from app.api import runs as api

    times = []
    total = api.count_runs(db, flt)  # warm the page cache, as an open Runs tab has
    api.runs_page(db, flt, 0, 100, total)
    for _ in range(7):
        started = time.perf_counter()
        total = api.count_runs(db, flt)
        api.runs_page(db, flt, 0, 100, total)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, total


def main() -> None:
    from app.api import runs as api
    from app.store import open_database

    filters = {
        "runs_filter_date": api.RunFilter(since=DAY, until=DAY + timedelta(days=1)),
        "runs_filter_record_ref": api.RunFilter(record="patient:1"),
        "runs_filter_record_name": api.RunFilter(record="Quill"),
        "runs_filter_date_and_workflow": api.RunFilter(workflow_id=1, since=DAY, until=DAY + timedelta(days=1)),
    }
    results: dict[int, dict[str, tuple[float, int]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for size in SIZES:
            path = Path(folder) / f"runs{size}.sqlite3"
            started = time.perf_counter()
            fill(path, size)
            if os.environ.get("CLINICFLOW_BENCH_WITHOUT_0006"):  # the figure before migration 0006
                con = sqlite3.connect(path)
                con.execute("DROP INDEX ix_runs_triggered")
                con.commit()
                con.close()
            print(json.dumps({"note": f"{size} runs inserted in {time.perf_counter() - started:.1f} s"}),
                  file=sys.stderr, flush=True)
            db = open_database(f"sqlite:///{path}")
            results[size] = {name: measure(db, flt) for name, flt in filters.items()}
            db.dispose()
    small, large = SIZES[0], SIZES[-1]
    for name in filters:
        (value, n_large), (base, n_small) = results[large][name], results[small][name]
        assert n_large == n_small, (name, n_large, n_small)
        print(json.dumps({"bench": f"{name}_{large}", "value": round(value, 2), "unit": "ms",
                          "baseline": round(base, 2), "ratio": round(value / base, 3), "target": 1.5,
                          "matched": n_large}), flush=True)


if __name__ == "__main__":
    main()
