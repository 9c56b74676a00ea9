"""The command line (`clinicflow`, `python -m app`): global options, dispatch, exit codes.

Exit status: 0 success, 1 refused (the reason on stderr as one line), 2 usage error.
Each command group is a module here with a `register(subparsers)`, listed in `GROUPS`;
every command calls `app.api`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from app import __version__
from app.api import default_actor, refusal_message
from app.api import team as team_api

from . import gui, history, init, integrations, maintenance, records, runs, runtime, team, workflows
from .common import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, CliContext, Handler, Parser, add_globals

__all__ = ["EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "build_parser", "default_actor", "main"]

# In the order `clinicflow --help` lists them.
GROUPS: tuple[object, ...] = (gui, init, workflows, records, runtime, runs, integrations, history, maintenance, team)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="clinicflow", description="Workflow automation for clinics.")
    parser.add_argument("--version", action="version", version=f"clinicflow {__version__}")
    # `clinicflow --demo` is `clinicflow gui --demo`: opening the app is the default command.
    parser.add_argument("--demo", action="store_true", default=argparse.SUPPRESS,
                        help="with no command: open the app, loading demo data into an empty database")
    add_globals(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for group in GROUPS:
        group.register(sub)  # type: ignore[attr-defined]
    return parser


def _action(args: argparse.Namespace) -> str:
    """The use case of a command, e.g. "workflow.publish" (see `app.api.team.ACTION_WORDS`)."""
    command = str(args.command)
    sub = getattr(args, f"{command}_command", None)
    if command == "run" and sub == "retry" and getattr(args, "step", False):
        return "run.retry_step"
    return f"{command}.{sub}" if sub else command


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    given = getattr(args, "actor", None)
    ctx = CliContext(database_url=getattr(args, "db", None), actor=given or default_actor(),
                     actor_given=given is not None)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        if args.command is None:
            return gui.open_app(argparse.Namespace(demo=getattr(args, "demo", False)), ctx)
        parser.parse_args([args.command, "--help"])
        return EXIT_USAGE
    try:
        return handler(args, ctx)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `clinicflow record list patient | head`: the reader left; not an error of ours.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # every refusal becomes one line on stderr
        message = refusal_message(exc)
        if team_api.is_privilege_refusal(exc):  # the database refused: who, and what
            message = team_api.refused_in_words(ctx.db, _action(args))
        if message is None:
            raise
        print(f"clinicflow: {message}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        ctx.close()
