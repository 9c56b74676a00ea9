"""`clinicflow run start|list|show|retry|cancel`."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from app.api import RecordRef, workflows
from app.api import runs as api
from app.workflow.vocabulary import RunStatus

from .common import EXIT_OK, CliContext, add_command, add_group, print_json


def register(sub: Any) -> None:
    cmds = add_group(sub, "run", "start, list, show, retry and cancel runs", "run_command")

    p = add_command(cmds, "start", "start a run of a manual workflow now; prints the run id", _start)
    p.add_argument("workflow_id", type=int, metavar="WORKFLOW_ID")
    p.add_argument("--record", metavar="TYPE:ID", help="the record the run is for, e.g. patient:12")
    p.add_argument("--wait", type=float, metavar="SECONDS",
                   help="wait until the run is no longer running (executing it here if no runtime is running)")
    p.add_argument("--json", action="store_true", help="print the run as JSON (with --wait: when it is done)")

    p = add_command(cmds, "list", "list runs, newest first", _list)
    p.add_argument("--workflow", type=int, metavar="ID", help="only runs of this workflow")
    p.add_argument("--status", choices=[str(s) for s in RunStatus], help="only runs with this status")
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


def _start(args: argparse.Namespace, ctx: CliContext) -> int:
    record = RecordRef.parse(args.record) if args.record else None
    run_id = api.start_run(ctx.db, args.workflow_id, record=record, actor=ctx.actor)
    status = api.wait_for_run(ctx.db, run_id, args.wait) if args.wait is not None else None
    if args.json:
        print_json(api.run_detail(ctx.db, run_id).to_json())
        return EXIT_OK
    print(run_id)
    if status is not None:
        print(f"run {run_id} is {status}", file=sys.stderr)
    return EXIT_OK


def _local(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    return f"{int(seconds // 86400)}d{int(seconds % 86400 // 3600):02d}h"


def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.workflow is not None:
        workflows.get_info(ctx.db, args.workflow)  # names an unknown workflow instead of listing nothing
    items = api.list_runs(ctx.db, api.RunFilter(workflow_id=args.workflow, status=args.status), limit=args.limit)
    if args.json:
        print_json([i.to_json() for i in items])
        return EXIT_OK
    if not items:
        print("No runs.", file=sys.stderr)
        return EXIT_OK
    print(f"{'ID':>6}  {'STATUS':<10} {'TRIGGERED':<19}  {'DURATION':>8}  {'WORKFLOW':<24} VERSION  TRIGGER")
    for item in items:
        print(f"{item.id:>6}  {item.status:<10} {_local(item.triggered_at):<19}  "
              f"{_duration(item.duration_seconds()):>8}  {item.workflow_name[:24]:<24} "
              f"{item.version:>7}  {item.trigger_words}")
    return EXIT_OK


def _show(args: argparse.Namespace, ctx: CliContext) -> int:
    detail = api.run_detail(ctx.db, args.run_id)
    if args.json:
        print_json(detail.to_json())
        return EXIT_OK
    print(f"Run {detail.id} of '{detail.workflow_name}' (workflow {detail.workflow_id}, "
          f"version {detail.version}): {detail.status}")
    print(f"  triggered {_local(detail.triggered_at)} ({detail.trigger_kind}"
          f"{', ' + str(detail.record) if detail.record else ''}), finished {_local(detail.finished_at)}, "
          f"took {_duration(detail.duration_seconds())}")
    if detail.error_message is not None or detail.error_type is not None:
        print(f"  error: {detail.error_message}")
    for step in detail.steps:
        line = f"  {step.node_id:<20} {step.node_type:<22} {step.status:<10} attempt {step.attempt}"
        if step.error_type is not None or step.error_message is not None:
            line += f"  {step.error_message}"
        print(line)
    return EXIT_OK


def _retry(args: argparse.Namespace, ctx: CliContext) -> int:
    (api.retry_step if args.step else api.retry_run)(ctx.db, args.run_id, ctx.actor)
    print(f"run {args.run_id} will {'retry its failed step' if args.step else 'run again from its trigger'}",
          file=sys.stderr)
    return EXIT_OK


def _cancel(args: argparse.Namespace, ctx: CliContext) -> int:
    api.cancel_run(ctx.db, args.run_id, ctx.actor)
    print(f"run {args.run_id} cancelled", file=sys.stderr)
    return EXIT_OK
