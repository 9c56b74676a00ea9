"""`clinicflow integration set|show|test smtp|sms`.

Secrets (SMTP password, gateway token) are never printed; a webhook token is shown only by
`workflow webhook`, where the person asked for it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.api import settings as api

from .common import EXIT_OK, EXIT_REFUSED, CliContext, add_command, add_group, print_json


def register(sub: Any) -> None:
    cmds = add_group(sub, "integration", "configure and test the SMTP server and SMS gateway", "integration_command")

    keys = "; ".join(f"{kind}: {', '.join(api.KEYS[kind])}" for kind in api.KINDS)
    p = add_command(cmds, "set", "change integration settings (an empty value clears a key)", _set)
    p.add_argument("kind", choices=api.KINDS, metavar="smtp|sms")
    p.add_argument("assignments", nargs="+", metavar="KEY=VALUE", help=keys)

    p = add_command(cmds, "show", "show integration settings (secrets only as set or not set)", _show)
    p.add_argument("kind", choices=api.KINDS, metavar="smtp|sms")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(cmds, "test", "check the connection; exit 1 with the reason if it fails", _test)
    p.add_argument("kind", choices=api.KINDS, metavar="smtp|sms")


def _set(args: argparse.Namespace, ctx: CliContext) -> int:
    stored = api.set_integration_words(ctx.db, args.kind, args.assignments, ctx.actor)
    print(f"{api.TITLES[args.kind]} settings saved:", file=sys.stderr)
    for line in stored.lines:
        print(f"  {line}", file=sys.stderr)
    return EXIT_OK


def _show(args: argparse.Namespace, ctx: CliContext) -> int:
    view = api.integration(ctx.db, args.kind)
    if args.json:
        print_json(view.to_json())
        return EXIT_OK
    for line in view.lines:
        print(line)
    last = view.last_test
    if last is None:
        print("last test: (not tested since the settings changed)")
    else:
        outcome = "ok" if last["ok"] else f"failed: {last['reason']}"
        print(f"last test: {outcome} ({last['at']})")
    return EXIT_OK


def _test(args: argparse.Namespace, ctx: CliContext) -> int:
    outcome = api.test_integration(ctx.db, args.kind)
    if not outcome.ok:
        print(f"clinicflow: {outcome.text}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"OK: {outcome.text}")
    return EXIT_OK
