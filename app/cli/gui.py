"""`clinicflow [gui] [--demo]`: open the desktop app. Qt is imported only when it opens."""

from __future__ import annotations

import argparse
from typing import Any

from .common import CliContext, add_command


def register(sub: Any) -> None:
    p = add_command(sub, "gui", "open the desktop app (the default)", open_app)
    p.add_argument("--demo", action="store_true", help="load demo data into an empty database")


def open_app(args: argparse.Namespace, ctx: CliContext) -> int:
    from app.views.app import run_app

    return run_app(ctx.database_url, demo=args.demo, actor=ctx.actor)
