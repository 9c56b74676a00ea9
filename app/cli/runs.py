"""`clinicflow run start|list|show|retry|again|cancel`, one run or every run matching a filter."""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from app.api import RecordRef, workflows
from app.api import runs as api
from app.workflow import MESSAGE_TYPES, type_title
from app.workflow.vocabulary import RunStatus

from .common import EXIT_OK, EXIT_USAGE, CliContext, add_command, add_group, print_json


def parse_when(text: str, *, end_of_day: bool = False) -> datetime:
    """A DATE (local midnight; with `end_of_day` the next midnight, so the day is included) or a date-time."""
    value = text.strip()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    if day is not None and len(value) <= 10:
        if end_of_day:
            day += timedelta(days=1)
        return datetime.combine(day, time()).astimezone()
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD) or date-time") from None
    return moment if moment.tzinfo else moment.astimezone()


def _since(text: str) -> datetime:
    return parse_when(text)


def _until(text: str) -> datetime:
    return parse_when(text, end_of_day=True)


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workflow", type=int, metavar="ID", help="only runs of this workflow")
    p.add_argument("--status", choices=[str(s) for s in RunStatus], help="only runs with this status")
    p.add_argument("--error-type", metavar="T", help="only runs that failed with this error type")
    p.add_argument("--since", type=_since, metavar="DATE", help="only runs triggered on or after DATE")
    p.add_argument("--until", type=_until, metavar="DATE", help="only runs triggered on or before DATE")
    p.add_argument("--record", metavar="TYPE:ID", help="only runs about this record (a patient: also theirs)")


def _filter(args: argparse.Namespace) -> api.RunFilter:
    record = getattr(args, "record", None) or ""
    if record:
        RecordRef.parse(record)  # a one-line refusal naming the reference
    return api.RunFilter(workflow_id=args.workflow, status=args.status, since=args.since, until=args.until,
                         record=record, error_type=args.error_type)


def _has_filter(args: argparse.Namespace) -> bool:
    return any(getattr(args, name, None) is not None
               for name in ("workflow", "status", "error_type", "since", "until", "record"))


def register(sub: Any) -> None:
    cmds = add_group(sub, "run", "start, list, show, retry and cancel runs", "run_command")

    p = add_command(cmds, "start", "start a run of a manual workflow now; prints the run id", _start)
    p.add_argument("workflow_id", type=int, metavar="WORKFLOW_ID")
    p.add_argument("--record", metavar="TYPE:ID", help="the record the run is for, e.g. patient:12")
    p.add_argument("--wait", type=float, metavar="SECONDS",
                   help="wait until the run is no longer running (executing it here if no runtime is running)")
    p.add_argument("--json", action="store_true", help="print the run as JSON (with --wait: when it is done)")

    p = add_command(cmds, "list", "list runs, newest first", _list)
    _add_filters(p)
    p.add_argument("--limit", type=int, metavar="N", help="at most N runs")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument("--csv", action="store_true", help="print CSV (a header line, then one line per run)")

    p = add_command(cmds, "show", "show a run and every attempt of its steps", _show)
    p.add_argument("run_id", type=int, metavar="RUN_ID")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(cmds, "retry", "Retry Run (from the trigger, completed steps reused), or Retry Step", _retry)
    p.add_argument("run_id", type=int, metavar="RUN_ID", nargs="?")
    p.add_argument("--step", action="store_true", help="Retry Step: run the failed step again, then go on")
    p.add_argument("--latest", action="store_true", help="continue on the workflow's live version")
    p.add_argument("--all", action="store_true", help="every run matching the filter (FILTER options)")
    p.add_argument("--dry-run", action="store_true", help="with --all: print how many runs match; change nothing")
    _add_filters(p)

    p = add_command(cmds, "again", "a new run of the live version with the same trigger context; prints its id",
                    _again)
    p.add_argument("run_id", type=int, metavar="RUN_ID")

    p = add_command(cmds, "cancel", "cancel a running or waiting run", _cancel)
    p.add_argument("run_id", type=int, metavar="RUN_ID", nargs="?")
    p.add_argument("--all", action="store_true", help="every run matching the filter (FILTER options)")
    p.add_argument("--dry-run", action="store_true", help="with --all: print how many runs match; change nothing")
    _add_filters(p)


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
    items = api.list_runs(ctx.db, _filter(args), limit=args.limit)
    if args.json:
        print_json([i.to_json() for i in items])
        return EXIT_OK
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(api.CSV_COLUMNS)
        writer.writerows(i.csv_row() for i in items)
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
    definition = detail.definition
    for step in detail.steps:
        # Steps by their titles (DESIGN section 9's words), the node type's name for an untitled one.
        title = (definition.step_title(step.node_id, step.node_type) if definition is not None
                 else type_title(step.node_type))
        line = f"  {title[:28]:<28} {step.status:<10} attempt {step.attempt}"
        if step.node_type in MESSAGE_TYPES:
            # Whether each message went out, and why not (DESIGN sections 13, 14).
            line += f"  message {api.message_outcome(step)}"
        elif step.error_type is not None or step.error_message is not None:
            line += f"  {step.error_message}"
        print(line)
    if detail.held_node_id is not None:
        title = (definition.step_title(detail.held_node_id) if definition is not None else "message")
        print(f"  {title[:28]:<28} {'held':<10}            message not sent yet: quiet hours; "
              f"sends when they end, {_local(detail.resumes_at)}")
    return EXIT_OK


def _one_or_all(args: argparse.Namespace, command: str) -> int | None:
    """A usage error (exit 2) unless exactly one of RUN_ID and --all is given; None if fine."""
    if args.all == (args.run_id is not None):
        print(f"clinicflow run {command}: give either RUN_ID or --all with filters", file=sys.stderr)
        return EXIT_USAGE
    if not args.all and (args.dry_run or _has_filter(args)):
        print(f"clinicflow run {command}: --dry-run and filters go with --all", file=sys.stderr)
        return EXIT_USAGE
    return None


def _progress(done: int, total: int) -> None:
    if total > api.BULK_BATCH_RUNS:
        print(f"{done} of {total} runs...", file=sys.stderr, flush=True)


def _bulk(args: argparse.Namespace, ctx: CliContext, done: str, act: Callable[[Any], Any]) -> int:
    """`--all FILTER...`: the count only with --dry-run, else act on every match and say how it went."""
    flt = _filter(args)
    if args.dry_run:
        print(f"{api.preview_bulk(ctx.db, flt)} runs matched (dry run: nothing changed)")
        return EXIT_OK
    print(act(flt).summary(done))
    return EXIT_OK


def _retry(args: argparse.Namespace, ctx: CliContext) -> int:
    refused = _one_or_all(args, "retry")
    if refused is not None:
        return refused
    if args.all:
        return _bulk(args, ctx, "retried", lambda flt: api.bulk_retry(ctx.db, flt, ctx.actor, step=args.step,
                                                                      latest=args.latest, progress=_progress))
    version = (api.retry_step if args.step else api.retry_run)(ctx.db, args.run_id, ctx.actor, latest=args.latest)
    what = "retry its failed step" if args.step else "run again from its trigger"
    print(f"run {args.run_id} will {what}{f' on version {version}' if args.latest else ''}", file=sys.stderr)
    return EXIT_OK


def _again(args: argparse.Namespace, ctx: CliContext) -> int:
    print(api.run_again(ctx.db, args.run_id, ctx.actor))
    return EXIT_OK


def _cancel(args: argparse.Namespace, ctx: CliContext) -> int:
    refused = _one_or_all(args, "cancel")
    if refused is not None:
        return refused
    if args.all:
        return _bulk(args, ctx, "cancelled", lambda flt: api.bulk_cancel(ctx.db, flt, ctx.actor, progress=_progress))
    api.cancel_run(ctx.db, args.run_id, ctx.actor)
    print(f"run {args.run_id} cancelled", file=sys.stderr)
    return EXIT_OK
