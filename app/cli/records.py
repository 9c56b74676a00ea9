"""`clinicflow record ...`: list, show, add and update the practice's records."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from app.api import RecordRef
from app.api import records as api

from .common import EXIT_OK, CliContext, add_command, add_group, print_json


def register(sub: Any) -> None:
    cmds = add_group(sub, "record", "the practice's patients, appointments, tasks and recalls", "record_command")

    p = add_command(cmds, "list", "list records of one type", _list)
    p.add_argument("type", choices=api.RECORD_TYPES, metavar="TYPE", help=", ".join(api.RECORD_TYPES))
    p.add_argument("--search", metavar="TEXT", help="only records with TEXT in a text field")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(cmds, "show", "show one record", _show)
    p.add_argument("ref", metavar="TYPE:ID")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(cmds, "add", "add a record; prints its reference", _add)
    p.add_argument("type", choices=api.RECORD_TYPES, metavar="TYPE", help=", ".join(api.RECORD_TYPES))
    p.add_argument("fields", nargs="*", metavar="field=value")

    p = add_command(cmds, "update", "change fields of a record", _update)
    p.add_argument("ref", metavar="TYPE:ID")
    p.add_argument("fields", nargs="+", metavar="field=value")

    from .maintenance import register_erase  # `record erase` lives with the other data-protection commands

    register_erase(cmds)


def _for_people(value: Any) -> str:
    """Text output shows times as people typed them: local, to the minute (JSON stays UTC)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M")
    return str(value)


def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    rows = api.list_records(ctx.db, args.type, search=args.search)
    if args.json:
        print_json([r.to_json() for r in rows])
        return EXIT_OK
    if not rows:
        print(f"No {args.type} records.", file=sys.stderr)
        return EXIT_OK
    names = api.summary_fields(args.type)
    print("\t".join(names))
    for row in rows:
        print("\t".join(_for_people(row[n]) for n in names))
    return EXIT_OK


def _show(args: argparse.Namespace, ctx: CliContext) -> int:
    record = api.get_record(ctx.db, RecordRef.parse(args.ref))
    if args.json:
        print_json(record.to_json())
        return EXIT_OK
    print(record.words)
    for name, value in record.values.items():
        print(f"  {name}: {_for_people(value)}")
    return EXIT_OK


def _add(args: argparse.Namespace, ctx: CliContext) -> int:
    print(api.add_record(ctx.db, args.type, api.parse_assignments(args.fields), ctx.actor))
    return EXIT_OK


def _update(args: argparse.Namespace, ctx: CliContext) -> int:
    ref = RecordRef.parse(args.ref)
    if not api.update_record(ctx.db, ref, api.parse_assignments(args.fields), ctx.actor):
        print(f"{ref}: nothing changed", file=sys.stderr)
    return EXIT_OK
