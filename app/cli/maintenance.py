"""`clinicflow maintenance prune` (retention now) and `clinicflow record erase patient:ID`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.api import erasure
from app.api import maintenance as api

from .common import EXIT_OK, EXIT_REFUSED, CliContext, add_command, add_group


def register(sub: Any) -> None:
    cmds = add_group(sub, "maintenance", "retention: redact the step data of old runs", "maintenance_command")
    p = add_command(cmds, "prune", "apply the retention setting now (the runtime also does it daily)", _prune)
    p.add_argument("--dry-run", action="store_true", help="say how many runs would be redacted; change nothing")


def register_erase(cmds: Any) -> None:
    """`record erase` (called from the `record` group)."""
    p = add_command(cmds, "erase", "delete a patient and everything about them (asks first)", _erase)
    p.add_argument("ref", metavar="patient:ID")
    p.add_argument("--yes", action="store_true", help="do not ask (for scripts)")


def _prune(args: argparse.Namespace, ctx: CliContext) -> int:
    def progress(done: int) -> None:
        print(f"{done} runs redacted...", file=sys.stderr, flush=True)

    result = api.prune(ctx.db, dry_run=args.dry_run, progress=None if args.dry_run else progress)
    print(result.summary())
    return EXIT_OK


def _erase(args: argparse.Namespace, ctx: CliContext) -> int:
    plan = erasure.erasure_plan(ctx.db, args.ref)
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"clinicflow: {plan.words()} Not erased: add --yes to erase without being asked",
                  file=sys.stderr)
            return EXIT_REFUSED
        print(plan.words(), file=sys.stderr)
        print(f"Erase {plan.ref} for good? Type yes to go on: ", end="", file=sys.stderr, flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("clinicflow: not erased", file=sys.stderr)
            return EXIT_REFUSED
    done = erasure.erase_patient(ctx.db, plan.ref, ctx.actor)
    print(f"{done.ref} erased: {done.appointments} appointments, {done.tasks} tasks, {done.recalls} recalls; "
          f"{done.active_runs} runs cancelled, {done.runs} runs redacted", file=sys.stderr)
    return EXIT_OK
