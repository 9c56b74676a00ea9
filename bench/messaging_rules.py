"""Message-step throughput with the messaging rules (consent, quiet hours, daily limit, daily
count) against the same engine with the rules switched off, in one process run.

`python bench/messaging_rules.py [--runs N] [--repeat 5]` prints one JSON object per line
(DESIGN section 12): {"bench", "value", "unit", "baseline", "ratio", "n", "target"} for
SQLite, and PostgreSQL when CLINICFLOW_BENCH_PG_URL or CLINICFLOW_TEST_PG_URL is set.
Each repetition executes N ready runs of "manual trigger -> send SMS" through one runtime
against a real local HTTP gateway, once with the rules and once without (alternating which
goes first); the figure is the median of the repetitions' steps per second.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine as bench
from sqlalchemy import event, func, select

from app.runtime import Runtime
from app.runtime.engine import durable
from app.runtime.integrations import set_integration
from app.store import open_database
from app.store.records import add_record
from app.store.schema import runs

SMS = {
    "format": "clinicflow.workflow/1", "name": "Bench SMS",
    "limits": {"max_messages_per_day": 1_000_000},
    "nodes": [{"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}},
              {"id": "text", "type": "action.send_sms", "config": {"body": "Hi {{ patient.first_name }}"}}],
    "edges": [{"from": "start", "to": "text"}],
}


@contextmanager
def gateway() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"status": "accepted"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/sms"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def rules_switched(on: bool) -> Iterator[None]:
    """Without the rules: main's behaviour (no check before queueing, no daily count)."""
    saved = durable.DurableEffects.applies_rules
    if not on:
        durable.DurableEffects.applies_rules = False
    try:
        yield
    finally:
        durable.DurableEffects.applies_rules = saved


class StatementCount:
    """SQL statements the runtime sends (an SQLAlchemy `before_cursor_execute` listener),
    counted only while `counting` is set (not the bench's own progress queries)."""

    def __init__(self) -> None:
        self.counting = False
        self.total = 0
        self.texts: collections.Counter[str] = collections.Counter()

    def __call__(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                 executemany: bool) -> None:
        if self.counting:
            self.total += 1
            self.texts[re.sub(r"sa_savepoint_\d+", "sa_savepoint_N", " ".join(statement.split()))[:100]] += 1


def one(url: str, gateway_url: str, count: int, with_rules: bool, counter: StatementCount | None = None) -> float:
    """Steps per second executing `count` SMS runs (2 steps each) with or without the rules."""
    db = open_database(url)
    if counter is not None:
        event.listen(db.engine, "before_cursor_execute", counter)
    try:
        with db.write() as conn:
            set_integration(conn, "sms", {"url": gateway_url, "token": "bench"}, "bench")
        workflow_id, _ = bench.setup(db, SMS, patients=0)
        with db.write() as conn:
            refs = [add_record(conn, "patient", {"first_name": f"P{i}", "last_name": "Bench",
                                                 "mobile": f"+4477009{i % 100000:05d}"}, "bench")
                    for i in range(min(count, 500))]
        bench.create_runs(db, workflow_id, refs, count)
        with rules_switched(with_rules):
            runtime = Runtime(db, "bench")
            started = time.perf_counter()
            while True:
                if counter is not None:
                    counter.counting = True
                runtime.run_once()
                if counter is not None:
                    counter.counting = False
                with db.read() as conn:
                    active = conn.execute(select(func.count()).select_from(runs)
                                          .where(runs.c.status.in_(("running", "waiting")))).scalar_one()
                if not active:
                    break
            elapsed = time.perf_counter() - started
        with db.read() as conn:
            done = conn.execute(select(func.count()).select_from(runs).where(runs.c.status == "completed")).scalar_one()
        assert done == count, (done, count)
        return 2 * count / elapsed
    finally:
        db.dispose()


def measure(kind: str, make_url: Any, count: int, repeat: int) -> dict[str, Any]:
    with_rules: list[float] = []
    without: list[float] = []
    with gateway() as gateway_url:
        for n in range(repeat):
            order = (True, False) if n % 2 == 0 else (False, True)
            for on in order:
                with make_url() as url:
                    (with_rules if on else without).append(one(url, gateway_url, count, on))
    value, baseline = statistics.median(with_rules), statistics.median(without)
    return {"bench": f"message_steps_with_rules_{kind}", "value": round(value, 1), "unit": "steps/s",
            "baseline": round(baseline, 1), "ratio": round(value / baseline, 3), "n": repeat, "target": 0.9,
            "range": [round(min(with_rules), 1), round(max(with_rules), 1)],
            "baseline_range": [round(min(without), 1), round(max(without), 1)],
            "pair_ratios": [round(a / b, 3) for a, b in zip(with_rules, without, strict=True)]}


def statements(kind: str, make_url: Any, count: int, show: bool) -> dict[str, Any]:
    """Statements per message step (one SMS run = one message step) with the rules and without."""
    per_step: dict[bool, float] = {}
    counters: dict[bool, StatementCount] = {}
    with gateway() as gateway_url:
        for on in (True, False):
            counters[on] = StatementCount()
            with make_url() as url:
                one(url, gateway_url, count, on, counters[on])
            per_step[on] = counters[on].total / count
    if show:
        for on in (True, False):
            print(f"--- {kind}, rules {'on' if on else 'off'}: statements per message step", file=sys.stderr)
            for text, n in counters[on].texts.most_common():
                print(f"{n / count:6.2f}  {text}", file=sys.stderr)
    return {"bench": f"statements_per_message_step_{kind}", "value": round(per_step[True], 2), "unit": "statements",
            "baseline": round(per_step[False], 2), "ratio": round(per_step[True] / per_step[False], 3), "n": 1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="SMS runs per measurement (default 300)")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions, median taken (default 5)")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), help="measure one database only")
    parser.add_argument("--statements", action="store_true",
                        help="count the SQL statements per message step instead (with the rules and without)")
    parser.add_argument("--show", action="store_true", help="with --statements: list them on stderr")
    args = parser.parse_args()
    # Open all week: the window is computed for every message, and nothing waits.
    os.environ["CLINICFLOW_DEFAULT_QUIET_HOURS"] = "Mon-Sun 00:00-24:00"
    tmp = Path(tempfile.mkdtemp(prefix="clinicflow-bench-"))
    pg = os.environ.get("CLINICFLOW_BENCH_PG_URL") or os.environ.get("CLINICFLOW_TEST_PG_URL")
    databases = []
    if args.only != "postgresql":
        databases.append(("sqlite", lambda: bench.sqlite_database(tmp)))
    if pg and args.only != "sqlite":
        databases.append(("postgresql", lambda: bench.pg_database(pg)))
    for kind, make_url in databases:
        if args.statements:
            print(json.dumps(statements(kind, make_url, args.runs, args.show)), flush=True)
        else:
            print(json.dumps(measure(kind, make_url, args.runs, args.repeat)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
