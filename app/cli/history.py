"""`clinicflow history`: who did what and when, newest first (text, --json or --csv)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from app.api import history as api

from .common import EXIT_OK, CliContext, add_command, print_json
from .runs import parse_when


def register(sub: Any) -> None:
    p = add_command(sub, "history", "who did what and when, newest first", _history)
    p.add_argument("--subject", metavar="REF", help="only entries about this, e.g. patient:12, workflow:3, run:7")
    p.add_argument("--actor", metavar="NAME", help="only what this person (or clinicflow) did")
    p.add_argument("--action", metavar="ACTION", help="only this action, e.g. run.retry")
    p.add_argument("--since", type=parse_when, metavar="DATE", help="only entries on or after DATE")
    p.add_argument("--limit", type=int, metavar="N", help="at most N entries (default: every one)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument("--csv", action="store_true", help="print CSV (a header line, then one line per entry)")


def _history(args: argparse.Namespace, ctx: CliContext) -> int:
    flt = api.HistoryFilter(subject=args.subject, actor=args.actor, action=args.action, since=args.since)
    rows = api.iter_history(ctx.db, flt)
    if args.limit is not None:
        rows = (row for _, row in zip(range(max(args.limit, 0)), rows, strict=False))
    if args.json:
        print_json([row.to_json() for row in rows])
        return EXIT_OK
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(api.CSV_COLUMNS)
        writer.writerows(row.csv_row() for row in rows)
        return EXIT_OK
    shown = 0
    for row in rows:
        if shown == 0:
            print(f"{'AT':<19}  {'ACTOR':<16} {'ACTION':<20} {'SUBJECT':<16} DETAIL")
        shown += 1
        detail = "" if row.detail is None else json.dumps(row.detail, ensure_ascii=False, default=str)
        print(f"{row.at.astimezone().strftime('%Y-%m-%d %H:%M:%S'):<19}  {row.actor[:16]:<16} {row.action:<20} "
              f"{row.subject:<16} {detail[:100]}")
    if shown == 0:
        print("No history.", file=sys.stderr)
    return EXIT_OK
