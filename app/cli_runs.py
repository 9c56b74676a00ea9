"""`clinicflow runtime` (the headless engine) and `clinicflow run start|list|show|retry|cancel`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from typing import Any

from app.cli import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, CliContext, add_command, print_json

RUN_STATUSES = ("running", "waiting", "completed", "failed", "cancelled")


def register(sub: Any) -> None:
    p = add_command(sub, "runtime", "run the engine headless until SIGINT/SIGTERM", _runtime)
    p.add_argument("--once", action="store_true", help="do all due work, then exit")
    p.add_argument("--name", metavar="NAME", help="this runtime's name (default: HOST-PID)")
    p.add_argument("--http", metavar="HOST:PORT", help="also serve webhook triggers on HOST:PORT")

    group = sub.add_parser("run", help="start, list, show, retry and cancel runs")
    cmds = group.add_subparsers(dest="run_command", metavar="COMMAND", required=True, parser_class=type(group))

    p = add_command(cmds, "start", "start a run of a manual workflow now; prints the run id", _start)
    p.add_argument("workflow_id", type=int, metavar="WORKFLOW_ID")
    p.add_argument("--record", metavar="TYPE:ID", help="the record the run is for, e.g. patient:12")
    p.add_argument("--wait", type=float, metavar="SECONDS",
                   help="wait until the run is no longer running (executing it here if no runtime is running)")
    p.add_argument("--json", action="store_true", help="print the run as JSON (with --wait: when it is done)")

    p = add_command(cmds, "list", "list runs, newest first", _list)
    p.add_argument("--workflow", type=int, metavar="ID", help="only runs of this workflow")
    p.add_argument("--status", choices=RUN_STATUSES, help="only runs with this status")
    p.add_argument("--limit", type=int, metavar="N", help="at most N runs")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(cmds, "show", "show a run and every attempt of its steps", _show)
    p.add_argument("run_id", type=int, metavar="RUN_ID")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(cmds, "retry", "Retry Run (from the trigger, completed steps reused), or Retry Step", _retry)
    p.add_argument("run_id", type=int, metavar="RUN_ID")
    p.add_argument("--step", action="store_true", help="Retry Step: run the failed step again, then go on")

    p = add_command(cmds, "cancel", "cancel a running or waiting run", _cancel)
    p.add_argument("run_id", type=int, metavar="RUN_ID")


def _parse_http(text: str) -> tuple[str, int] | None:
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        return None
    return (host or "127.0.0.1", int(port))


def _runtime(args: argparse.Namespace, ctx: CliContext) -> int:
    from app.runtime import Runtime

    http = None
    if args.http:
        http = _parse_http(args.http)
        if http is None:
            print(f"clinicflow runtime: --http '{args.http}' is not HOST:PORT (e.g. 127.0.0.1:8080)", file=sys.stderr)
            return EXIT_USAGE
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from app.runtime.integrations import SecretMaskingFilter

        for handler in logging.getLogger().handlers:
            handler.addFilter(SecretMaskingFilter())
    except ImportError:
        pass
    logging.getLogger("alembic").setLevel(logging.WARNING)
    runtime = Runtime(ctx.db, args.name, http=http)
    if args.once:
        steps = runtime.run_once()
        logging.getLogger("clinicflow.runtime").info("runtime --once: %d step(s) executed", steps)
        return EXIT_OK
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        logging.getLogger("clinicflow.runtime").info("%s received: finishing the current step",
                                                     signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        runtime.start()
    except (OSError, RuntimeError) as exc:
        print(f"clinicflow runtime: cannot serve webhooks on {args.http}: {exc}", file=sys.stderr)
        runtime.stop()
        return EXIT_REFUSED
    while not stop.wait(0.5):
        pass
    runtime.stop()
    return EXIT_OK


def _start(args: argparse.Namespace, ctx: CliContext) -> int:
    from app.runtime.control import start_run
    from app.store.records import RecordRef

    record = RecordRef.parse(args.record) if args.record else None
    run_id = start_run(ctx.db, args.workflow_id, record=record, actor=ctx.actor)
    if args.wait is None:
        if args.json:
            _print_detail(ctx, run_id)
        else:
            print(run_id)
        return EXIT_OK
    status = _wait_for(ctx, run_id, args.wait)
    if args.json:
        _print_detail(ctx, run_id)
    else:
        print(run_id)
        print(f"run {run_id} is {status}", file=sys.stderr)
    return EXIT_OK


def _status(ctx: CliContext, run_id: int) -> str:
    from sqlalchemy import select

    from app.store.schema import runs

    with ctx.db.read() as conn:
        return str(conn.execute(select(runs.c.status).where(runs.c.id == run_id)).scalar())


def _runtime_running(ctx: CliContext) -> bool:
    from sqlalchemy import select

    from app.runtime.runtime import is_alive
    from app.store.schema import runtimes

    with ctx.db.read() as conn:
        beats = conn.execute(select(runtimes.c.heartbeat_at)).scalars().all()
    return any(is_alive(beat) for beat in beats)


def _wait_for(ctx: CliContext, run_id: int, seconds: float) -> str:
    """Until the run is no longer running; with no runtime about, this command executes it."""
    deadline = time.monotonic() + seconds
    runner = None
    if not _runtime_running(ctx):
        from app.runtime import Runtime

        runner = Runtime(ctx.db)
    while True:
        if runner is not None:
            runner.run_once()
        status = _status(ctx, run_id)
        if status != "running" or time.monotonic() >= deadline:
            return status
        time.sleep(0.05)


def _print_detail(ctx: CliContext, run_id: int) -> None:
    from app.runtime.queries import run_detail

    with ctx.db.read() as conn:
        print_json(run_detail(conn, run_id))


def _local(text: str | None) -> str:
    if not text:
        return "-"
    from datetime import datetime

    return datetime.fromisoformat(text).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    return f"{int(seconds // 86400)}d{int(seconds % 86400 // 3600):02d}h"


def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    from sqlalchemy import select

    from app.runtime.queries import describe_trigger, list_runs
    from app.store.schema import runs
    from app.store.workflows import get_info

    with ctx.db.read() as conn:
        if args.workflow is not None:
            get_info(conn, args.workflow)  # names an unknown workflow instead of listing nothing
        items = list_runs(conn, workflow_id=args.workflow, status=args.status, limit=args.limit)
        if args.json:
            print_json(items)
            return EXIT_OK
        if not items:
            print("No runs.", file=sys.stderr)
            return EXIT_OK
        rows = {r["id"]: r for r in conn.execute(select(runs).where(runs.c.id.in_([i["id"] for i in items])))
                .mappings()}
        print(f"{'ID':>6}  {'STATUS':<10} {'TRIGGERED':<19}  {'DURATION':>8}  {'WORKFLOW':<24} VERSION  TRIGGER")
        for item in items:
            print(f"{item['id']:>6}  {item['status']:<10} {_local(item['triggered_at']):<19}  "
                  f"{_duration(item['duration_seconds']):>8}  {item['workflow_name'][:24]:<24} "
                  f"{item['version']:>7}  {describe_trigger(conn, rows[item['id']])}")
    return EXIT_OK


def _show(args: argparse.Namespace, ctx: CliContext) -> int:
    from app.runtime.queries import run_detail

    with ctx.db.read() as conn:
        detail = run_detail(conn, args.run_id)
    if args.json:
        print_json(detail)
        return EXIT_OK
    record = detail["trigger"]["record"]
    print(f"Run {detail['id']} of '{detail['workflow_name']}' (workflow {detail['workflow_id']}, "
          f"version {detail['version']}): {detail['status']}")
    print(f"  triggered {_local(detail['triggered_at'])} ({detail['trigger']['kind']}"
          f"{', ' + record if record else ''}), finished {_local(detail['finished_at'])}, "
          f"took {_duration(detail['duration_seconds'])}")
    if detail["error"]:
        print(f"  error: {detail['error']['message']}")
    for step in detail["steps"]:
        line = f"  {step['node_id']:<20} {step['type']:<22} {step['status']:<10} attempt {step['attempt']}"
        if step["error"]:
            line += f"  {step['error']['message']}"
        print(line)
    return EXIT_OK


def _retry(args: argparse.Namespace, ctx: CliContext) -> int:
    from app.runtime.control import retry_run, retry_step

    (retry_step if args.step else retry_run)(ctx.db, args.run_id, ctx.actor)
    print(f"run {args.run_id} will {'retry its failed step' if args.step else 'run again from its trigger'}",
          file=sys.stderr)
    return EXIT_OK


def _cancel(args: argparse.Namespace, ctx: CliContext) -> int:
    from app.runtime.control import cancel_run

    cancel_run(ctx.db, args.run_id, ctx.actor)
    print(f"run {args.run_id} cancelled", file=sys.stderr)
    return EXIT_OK
