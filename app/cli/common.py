"""What every command group shares: exit codes, the per-command context, JSON output, the parser."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from app.api import Database, Refused
from app.api.practice import open_practice
from app.api.team import current_member

EXIT_OK: Final = 0
EXIT_REFUSED: Final = 1
EXIT_USAGE: Final = 2


@dataclass
class CliContext:
    """What every command gets: the database (opened on first use) and who is acting."""

    database_url: str | None
    actor: str
    actor_given: bool = False   # `--as NAME` was given
    _db: Database | None = field(default=None, repr=False)

    @property
    def db(self) -> Database:
        return self.open()

    def open(self, *, create: bool = False) -> Database:
        """The database, opened on first use; `create` makes a new one (and its folder)."""
        if self._db is None:
            db = open_practice(self.database_url, create=create)
            db.on_wait = _say_waiting
            if db.is_postgresql:
                self._use_login_as_actor(db)
            self._db = db
        return self._db

    def _use_login_as_actor(self, db: Database) -> None:
        """On PostgreSQL a team member acts as their login (the database records it anyway)."""
        member = current_member(db)
        if member.may_name_actor:
            return
        if self.actor_given:
            db.dispose()
            raise Refused(f"--as cannot be used on PostgreSQL: the history records the login you connected "
                          f"as ({member.name})")
        self.actor = member.name

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()


def _say_waiting(message: str | None) -> None:
    """A write waiting for another program's SQLite lock says so instead of hanging silently."""
    if message is not None:
        print(f"clinicflow: {message}", file=sys.stderr, flush=True)


Handler = Callable[[argparse.Namespace, CliContext], int]


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


class Parser(argparse.ArgumentParser):
    """Usage errors exit 2 with the usage and one line (DESIGN section 8)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def add_globals(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", default=argparse.SUPPRESS,
                        help="database URL or SQLite file "
                             "(default: $CLINICFLOW_DATABASE_URL, else the user data directory)")
    parser.add_argument("--as", dest="actor", metavar="NAME", default=argparse.SUPPRESS,
                        help="the team member doing this (default: your login name)")


def add_command(sub: Any, name: str, help: str, handler: Handler) -> argparse.ArgumentParser:
    """A leaf command; `--db` and `--as` may also follow it (`clinicflow workflow list --db X`)."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
    add_globals(parser)
    parser.set_defaults(handler=handler)
    return parser


def add_group(sub: Any, name: str, help: str, dest: str) -> Any:
    """A command group (`workflow`, `run`, ...) whose subcommands are required."""
    group = sub.add_parser(name, help=help)
    return group.add_subparsers(dest=dest, metavar="COMMAND", required=True, parser_class=Parser)
