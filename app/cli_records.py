"""`clinicflow record ...`: list, show, add and update the practice's records."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from app.cli import EXIT_OK, CliContext, add_command, print_json
from app.store import records as store
from app.store.errors import InvalidRecord
from app.workflow.records import RECORD_FIELDS, RECORD_TYPES


def register(sub: Any) -> None:
    group = sub.add_parser("record", help="the practice's patients, appointments, tasks and recalls")
    cmds = group.add_subparsers(dest="record_command", metavar="COMMAND", required=True,
                                parser_class=type(group))

    p = add_command(cmds, "list", "list records of one type", _list)
    p.add_argument("type", choices=RECORD_TYPES, metavar="TYPE", help=", ".join(RECORD_TYPES))
    p.add_argument("--search", metavar="TEXT", help="only records with TEXT in a text field")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(cmds, "show", "show one record", _show)
    p.add_argument("ref", metavar="TYPE:ID")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(cmds, "add", "add a record; prints its reference", _add)
    p.add_argument("type", choices=RECORD_TYPES, metavar="TYPE", help=", ".join(RECORD_TYPES))
    p.add_argument("fields", nargs="*", metavar="field=value")

    p = add_command(cmds, "update", "change fields of a record", _update)
    p.add_argument("ref", metavar="TYPE:ID")
    p.add_argument("fields", nargs="+", metavar="field=value")


def parse_assignments(items: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidRecord(f"'{item}' is not field=value")
        values[name.strip()] = value
    return values


def _for_people(value: Any) -> str:
    """Text output shows times as people typed them: local, to the minute (JSON stays UTC)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M")
    return str(value)


def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.db.read() as conn:
        rows = store.list_records(conn, args.type, search=args.search)
    if args.json:
        print_json([store.record_to_json(r) for r in rows])
        return EXIT_OK
    if not rows:
        print(f"No {args.type} records.", file=sys.stderr)
        return EXIT_OK
    names = [s.name for s in RECORD_FIELDS[args.type] if s.name not in ("notes", "created_at", "updated_at", "description")]
    print("\t".join(names))
    for row in rows:
        print("\t".join(_for_people(row[n]) for n in names))
    return EXIT_OK


def _show(args: argparse.Namespace, ctx: CliContext) -> int:
    ref = store.RecordRef.parse(args.ref)
    with ctx.db.read() as conn:
        record = store.get_record(conn, ref)
        title = store.describe(conn, ref)
    if args.json:
        print_json(store.record_to_json(record))
        return EXIT_OK
    print(title)
    for name, value in record.items():
        print(f"  {name}: {_for_people(value)}")
    return EXIT_OK


def _add(args: argparse.Namespace, ctx: CliContext) -> int:
    values = parse_assignments(args.fields)
    with ctx.db.write() as conn:
        ref = store.add_record(conn, args.type, values, ctx.actor)
    print(ref)
    return EXIT_OK


def _update(args: argparse.Namespace, ctx: CliContext) -> int:
    ref = store.RecordRef.parse(args.ref)
    values = parse_assignments(args.fields)
    with ctx.db.write() as conn:
        changes = store.update_record(conn, ref, values, ctx.actor)
    if not changes:
        print(f"{ref}: nothing changed", file=sys.stderr)
    return EXIT_OK
