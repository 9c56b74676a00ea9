"""`clinicflow settings show [--json]` and `settings set KEY VALUE`: the practice settings
(DESIGN sections 8, 13-15), defaults included; a bad value exits 1 naming it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.api import settings as api

from .common import EXIT_OK, CliContext, add_command, add_group, print_json


def register(sub: Any) -> None:
    cmds = add_group(sub, "settings", "show or change the practice settings", "settings_command")
    p = add_command(cmds, "show", "every practice setting, defaults included", _show)
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add_command(cmds, "set", "change one practice setting", _set)
    p.add_argument("key", metavar="KEY", help="e.g. quiet_hours, closed_dates, time_zone, max_chain_depth")
    p.add_argument("value", metavar="VALUE", help="e.g. \"Mon-Fri 08:00-20:00; Sat 09:00-13:00\"")


def _show(args: argparse.Namespace, ctx: CliContext) -> int:
    shown = api.practice_settings(ctx.db)
    if args.json:
        print_json({s.key: s.value for s in shown})
        return EXIT_OK
    width = max(len(s.key) for s in shown)
    for s in shown:
        print(f"{s.key.ljust(width)}  {s.words}{'  (default)' if s.is_default else ''}")
    return EXIT_OK


def _set(args: argparse.Namespace, ctx: CliContext) -> int:
    stored = api.set_practice_setting(ctx.db, args.key, args.value, ctx.actor)
    print(f"{stored.key}: {stored.words}", file=sys.stderr)
    return EXIT_OK
