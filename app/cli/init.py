"""`clinicflow init [--demo]`: create or upgrade the database, optionally with the demo practice."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.api.practice import load_demo
from app.api.team import current_member, setup_roles

from .common import EXIT_OK, CliContext, add_command


def register(sub: Any) -> None:
    p = add_command(sub, "init", "create or upgrade the database", _init)
    p.add_argument("--demo", action="store_true", help="add sample records and workflows")


def _init(args: argparse.Namespace, ctx: CliContext) -> int:
    db = ctx.open(create=True)  # init is the explicit choice to create a database (and its folder)
    if db.is_postgresql and current_member(db).may_name_actor:  # the owner (or a superuser) sets up
        for notice in setup_roles(db):  # roles a first migration could not create (DESIGN section 15)
            print(f"clinicflow: {notice}", file=sys.stderr)
    if args.demo:
        print(load_demo(db, ctx.actor), file=sys.stderr)
    print(f"Database ready: {db.display_name}", file=sys.stderr)
    return EXIT_OK
