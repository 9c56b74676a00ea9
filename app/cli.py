"""The command line (`clinicflow`, `python -m app`): global options, dispatch, exit codes.

Exit status: 0 success, 1 refused (the reason on stderr as one line), 2 usage error.
Each command group lives in its own `cli_*` module with a `register(subparsers)`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app import __version__

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"


@dataclass
class CliContext:
    """What every command gets: the database (opened on first use) and who is acting."""

    database_url: str | None
    actor: str
    _db: Any = field(default=None, repr=False)

    @property
    def db(self) -> Any:
        if self._db is None:
            from app.store import open_database

            self._db = open_database(self.database_url)
            self._db.on_wait = _say_waiting
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()


def _say_waiting(message: str | None) -> None:
    """A write waiting for another program's SQLite lock says so instead of hanging silently."""
    if message is not None:
        print(f"clinicflow: {message}", file=sys.stderr, flush=True)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


Handler = Callable[[argparse.Namespace, CliContext], int]


def build_parser() -> argparse.ArgumentParser:
    from app import cli_records, cli_workflows

    parser = _Parser(prog="clinicflow", description="Workflow automation for clinics.")
    parser.add_argument("--version", action="version", version=f"clinicflow {__version__}")
    # `clinicflow --demo` is `clinicflow gui --demo`: opening the app is the default command.
    parser.add_argument("--demo", action="store_true", default=argparse.SUPPRESS,
                        help="with no command: open the app, loading demo data into an empty database")
    _add_globals(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    gui = add_command(sub, "gui", "open the desktop app (the default)", _cmd_gui)
    gui.add_argument("--demo", action="store_true", help="load demo data into an empty database")

    init = add_command(sub, "init", "create or upgrade the database", _cmd_init)
    init.add_argument("--demo", action="store_true", help="add sample records and workflows")

    cli_workflows.register(sub)
    cli_records.register(sub)
    for optional in ("app.cli_runs", "app.cli_integrations"):
        try:
            module = __import__(optional, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != optional:
                raise
            continue
        module.register(sub)
    return parser


def _add_globals(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", default=argparse.SUPPRESS,
                        help="database URL or SQLite file (default: $CLINICFLOW_DATABASE_URL, else the user data directory)")
    parser.add_argument("--as", dest="actor", metavar="NAME", default=argparse.SUPPRESS,
                        help="the team member doing this (default: your login name)")


def add_command(sub: Any, name: str, help: str, handler: Handler) -> argparse.ArgumentParser:
    """A leaf command; `--db` and `--as` may also follow it (`clinicflow workflow list --db X`)."""
    parser = sub.add_parser(name, help=help, description=help)
    _add_globals(parser)
    parser.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = CliContext(database_url=getattr(args, "db", None), actor=getattr(args, "actor", None) or default_actor())
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        if args.command is None:
            return _cmd_gui(argparse.Namespace(demo=getattr(args, "demo", False)), ctx)
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
    except Exception as exc:  # noqa: BLE001 - every refusal becomes one line on stderr
        message = refusal_message(exc)
        if message is None:
            raise
        print(f"clinicflow: {message}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        ctx.close()


def refusal_message(exc: BaseException) -> str | None:
    """One line for an error a person caused and can fix; None for a bug."""
    from app.store.errors import Refused
    from app.workflow import TemplateError, WorkflowError

    if isinstance(exc, (Refused, WorkflowError, TemplateError)):
        return " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    from sqlalchemy.exc import DataError, OperationalError

    if isinstance(exc, DataError):  # a value the database itself will not hold
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return f"the database refused a value: {reason}"
    if isinstance(exc, OperationalError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return f"database error: {reason}"
    return None


def _cmd_init(args: argparse.Namespace, ctx: CliContext) -> int:
    if ctx._db is None:  # init is the explicit choice to create a database (and its folder)
        from app.store import open_database

        ctx._db = open_database(ctx.database_url, create=True)
        ctx._db.on_wait = _say_waiting
    db = ctx.db
    if args.demo:
        from app.store.demo import load_demo

        summary = load_demo(db, ctx.actor)
        print(summary, file=sys.stderr)
    print(f"Database ready: {db.display_name}", file=sys.stderr)
    return EXIT_OK


def _cmd_gui(args: argparse.Namespace, ctx: CliContext) -> int:
    try:
        from app.views.app import run_app
    except ModuleNotFoundError as exc:
        if exc.name not in ("app.views.app",):
            raise
        print("The desktop app is not built yet; use the command line (clinicflow --help).", file=sys.stderr)
        return EXIT_OK
    return run_app(ctx.database_url, demo=args.demo, actor=ctx.actor)
