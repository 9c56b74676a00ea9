"""`clinicflow integration set|show|test smtp|sms` and `clinicflow workflow webhook ID [--rotate]`.

Secrets (SMTP password, gateway token) are never printed; a webhook token is shown only by
`workflow webhook`, where the person asked for it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.cli import EXIT_OK, EXIT_REFUSED, CliContext, add_command, print_json
from app.runtime.integrations import settings as integration_settings
from app.runtime.integrations.email import check_smtp
from app.runtime.integrations.errors import DeliveryError
from app.runtime.integrations.sms import check_sms


def register(sub: Any) -> None:
    group = sub.add_parser("integration", help="configure and test the SMTP server and SMS gateway")
    cmds = group.add_subparsers(dest="integration_command", metavar="COMMAND", required=True,
                                parser_class=type(group))

    keys = "smtp: " + ", ".join(integration_settings.SMTP_KEYS) + "; sms: " + ", ".join(integration_settings.SMS_KEYS)
    p = add_command(cmds, "set", "change integration settings (an empty value clears a key)", _set)
    p.add_argument("kind", choices=integration_settings.KINDS, metavar="smtp|sms")
    p.add_argument("assignments", nargs="+", metavar="KEY=VALUE", help=keys)

    p = add_command(cmds, "show", "show integration settings (secrets only as set or not set)", _show)
    p.add_argument("kind", choices=integration_settings.KINDS, metavar="smtp|sms")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_command(cmds, "test", "check the connection; exit 1 with the reason if it fails", _test)
    p.add_argument("kind", choices=integration_settings.KINDS, metavar="smtp|sms")

    _register_webhook(sub)


def _register_webhook(sub: Any) -> None:
    """`workflow webhook` joins the `workflow` group that app.cli_workflows registered."""
    workflow_group = sub.choices.get("workflow")
    if workflow_group is None:
        return
    actions = [a for a in workflow_group._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        return
    p = add_command(actions[0], "webhook", "a webhook workflow's path and token (--rotate: a new token)", _webhook)
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--rotate", action="store_true", help="replace the token; the old one stops working at once")
    p.add_argument("--json", action="store_true", help="print JSON")


def _set(args: argparse.Namespace, ctx: CliContext) -> int:
    values = integration_settings.parse_assignments(args.kind, args.assignments)
    with ctx.db.write() as conn:
        stored = integration_settings.set_integration(conn, args.kind, values, ctx.actor)
    print(f"{integration_settings.TITLES[args.kind]} settings saved:", file=sys.stderr)
    for line in integration_settings.describe_settings(args.kind, stored):
        print(f"  {line}", file=sys.stderr)
    return EXIT_OK


def _show(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.db.read() as conn:
        stored = integration_settings.stored_values(conn, args.kind)
        last = integration_settings.last_test_result(conn, args.kind)
    if args.json:
        shown: dict[str, Any] = {}
        for key in integration_settings.KEYS[args.kind]:
            value = stored.get(key)
            if key in ("password", "token"):
                value = bool(value)
            elif key == "url" and value:
                value = integration_settings.shown_url(value)
            shown[key] = value
        print_json({"kind": args.kind, "settings": shown, "last_test": last})
        return EXIT_OK
    for line in integration_settings.describe_settings(args.kind, stored):
        print(line)
    if last is None:
        print("last test: (not tested since the settings changed)")
    else:
        outcome = "ok" if last["ok"] else f"failed: {last['reason']}"
        print(f"last test: {outcome} ({last['at']})")
    return EXIT_OK


def _test(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.db.read() as conn:
        try:
            done = check_smtp(conn) if args.kind == "smtp" else check_sms(conn)
            failure = None
        except DeliveryError as exc:
            done, failure = None, str(exc)
    with ctx.db.write() as conn:
        integration_settings.record_test_result(conn, args.kind, failure is None, failure)
    if failure is not None:
        print(f"clinicflow: {failure}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"OK: {done}")
    return EXIT_OK


def _webhook(args: argparse.Namespace, ctx: CliContext) -> int:
    from app.store.workflows import webhook_token

    with ctx.db.write() as conn:
        token = webhook_token(conn, args.id, rotate=args.rotate, actor=ctx.actor)
    path = f"/hooks/{args.id}"
    if args.json:
        print_json({"path": path, "token": token})
        return EXIT_OK
    print(f"path: {path}")
    print(f"token: {token}")
    print(f"Send: POST {path} with the header 'Authorization: Bearer <token>' and a JSON object body"
          + (" (the old token no longer works)" if args.rotate else ""), file=sys.stderr)
    return EXIT_OK
