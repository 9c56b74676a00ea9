"""The practice database as a whole: opening it, checking a connection, the demo practice.

`check_database_url` is the one check of a database a person chose (Settings' Test and Save,
and start-up, always off the GUI thread): whether it can be opened, and if not why, in words a
practice manager can act on. It never creates anything: a SQLite path in a folder that does
not exist is refused (opening it would silently make the folders and an empty database, as if
all data had vanished), and a new file in an existing folder is reported as such so the caller
can ask first. It is built on the store's own helpers (`normalize_url`, `check_sqlite_location`,
`sqlite_path`, `default_database_url`), so opening and checking agree on what a URL means.
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import NullPool

from app.store.database import (
    Database,
    check_sqlite_location,
    create_database,
    default_database_url,
    normalize_url,
    open_database,
)
from app.store.errors import Refused
from app.store.schema import patients, workflows

__all__ = [
    "PG_CONNECT_TIMEOUT_S", "DatabaseCheck", "check_connection", "check_database_url", "default_database_url",
    "ending", "is_empty", "load_demo", "login_name", "needs_login", "normalize_url", "open_practice", "server_key",
    "shown_url", "signed_in", "without_login",
]


def open_practice(url: str | None = None, *, create: bool = False) -> Database:
    """Open the practice database (`url`, else `CLINICFLOW_DATABASE_URL`, else the user
    data directory) and create or upgrade its schema. A SQLite file in a folder that does
    not exist is refused unless `create` (the explicit choice to make a new database)."""
    return open_database(url, create=create)


def check_connection(url: str) -> str:
    """"connected to PostgreSQL host:5432/clinic", or raises with the reason (the schema is not touched)."""
    db = create_database(url)
    try:
        with db.read() as conn:
            conn.execute(text("SELECT 1"))
        return f"connected to {db.display_name}"
    finally:
        db.dispose()


def is_empty(db: Database) -> bool:
    """No workflows and no patients yet: the app shows its welcome page."""
    with db.read() as conn:
        return (conn.execute(select(func.count()).select_from(workflows)).scalar_one() == 0
                and conn.execute(select(func.count()).select_from(patients)).scalar_one() == 0)


def load_demo(db: Database, actor: str) -> str:
    """Fill an empty practice with demo records and example workflows; a one-line summary.
    Adds nothing if the practice already has patients or workflows."""
    from app.store.demo import load_demo as load

    return load(db, actor)


# -- signing in (DESIGN section 15): a PostgreSQL address without a password means each team
# member signs in with their own login; the app adds it to the address in memory only.

def needs_login(url: str | None) -> bool:
    """A PostgreSQL address that carries no password: the person signs in."""
    if not url:
        return False
    full = normalize_url(url)
    if not full.startswith("postgresql"):
        return False
    try:
        return make_url(full).password is None
    except Exception:  # a malformed address is the start-up check's to explain
        return False


def _parsed(url: str) -> URL:
    return make_url(normalize_url(url))


def login_name(url: str) -> str:
    """The user name an address names ('' when none)."""
    return _parsed(url).username or ""


def server_key(url: str) -> str:
    """host:port/database — what the remembered user name and password belong to."""
    parsed = _parsed(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def signed_in(url: str, user: str, password: str) -> str:
    """`url` with this person's login in it (kept in memory only, never in the settings)."""
    return _parsed(url).set(username=user, password=password).render_as_string(hide_password=False)


def without_login(url: str) -> str:
    """The address as it was chosen: no user name or password (for Switch user)."""
    return _parsed(url).set(username=None, password=None).render_as_string(hide_password=False)


# PostgreSQL: long enough for a server across a clinic's network, short enough that a person
# waiting at start-up or in Settings is told within seconds.
PG_CONNECT_TIMEOUT_S: Final = 4


@dataclass(frozen=True)
class DatabaseCheck:
    url: str                 # the full URL that was checked
    ok: bool
    reason: str              # what answered, or why not (one line)
    new_file: bool = False   # SQLite: no file there yet, opening it makes a new, empty database
    login_refused: bool = False  # PostgreSQL: the server is there but refused this user name or password

    @property
    def is_default(self) -> bool:
        return self.url == normalize_url(default_database_url())


def ending(text: str) -> str:
    """`text` ended as a sentence (a reason may already end in a question)."""
    return text if text.endswith((".", "?", "!")) else text + "."


def shown_url(url: str) -> str:
    """A URL for people: the file path of a SQLite URL, no password of a PostgreSQL one."""
    full = normalize_url(url)
    if full.startswith("sqlite:///"):
        return full.removeprefix("sqlite:///")
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", full)


def check_database_url(url: str | None, *, timeout: float = PG_CONNECT_TIMEOUT_S) -> DatabaseCheck:
    """Try the database at `url` (None: this computer's file) without creating or changing anything."""
    full = normalize_url(url or default_database_url())
    if full.startswith("sqlite:"):
        return _check_sqlite(full)
    if full.startswith("postgresql"):
        return _check_postgresql(full, timeout)
    return DatabaseCheck(full, False, f"'{shown_url(full)}' is not a database Clinicflow can use: give a SQLite file "
                                      "or a postgresql:// address")


def _check_sqlite(full: str) -> DatabaseCheck:
    database = full.removeprefix("sqlite:///") if full.startswith("sqlite:///") else ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return DatabaseCheck(full, False, "an in-memory database keeps nothing: give a database file")
    path = Path(database).expanduser()
    folder = path.parent
    default_path = Path(normalize_url(default_database_url()).removeprefix("sqlite:///"))
    if path == default_path and not path.exists():
        # This computer's own file: Clinicflow makes its data folder and the file on first use.
        return DatabaseCheck(full, True, f"this computer's database file {path} (new, empty)", new_file=True)
    if not folder.is_dir():
        return DatabaseCheck(full, False, f"the folder {folder} does not exist; choose a file in a folder that "
                                          "exists (Clinicflow does not make folders for a database)")
    try:
        check_sqlite_location(path)
    except Refused as exc:
        return DatabaseCheck(full, False, str(exc))
    if path.is_dir():
        return DatabaseCheck(full, False, f"{path} is a folder, not a database file")
    if not path.exists():
        if not os.access(folder, os.W_OK):
            return DatabaseCheck(full, False, f"the folder {folder} cannot be written to by you")
        return DatabaseCheck(full, True, f"no database at {path} yet: a new, empty one would be made there",
                             new_file=True)
    if not os.access(path, os.R_OK | os.W_OK):
        return DatabaseCheck(full, False, f"the file {path} cannot be read and written by you")
    try:
        # Read-only and by URI, so that checking never creates or changes the file.
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            return DatabaseCheck(full, False, f"the file {path} is not a Clinicflow database (or it is damaged)")
        if "locked" in text:
            return DatabaseCheck(full, True, f"SQLite file {path} (busy: another program is writing to it)")
        return DatabaseCheck(full, False, f"the file {path} cannot be opened: {text}")
    return DatabaseCheck(full, True, f"SQLite file {path}")


def _check_postgresql(full: str, timeout: float) -> DatabaseCheck:
    try:
        parsed = make_url(full)
    except ArgumentError:
        return DatabaseCheck(full, False, f"'{shown_url(full)}' is not a database address")
    if parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    name = f"PostgreSQL {where}/{parsed.database}"
    engine = create_engine(parsed, poolclass=NullPool, connect_args={"connect_timeout": max(1, round(timeout))})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        message = str(exc.orig or exc)
        return DatabaseCheck(full, False, postgresql_reason(message, where, parsed.database, parsed.username),
                             login_refused=is_login_refusal(message))
    except Exception as exc:
        return DatabaseCheck(full, False, f"{name} cannot be used: {' '.join(str(exc).split())}")
    finally:
        engine.dispose()
    return DatabaseCheck(full, True, f"connected to {name}")


def is_login_refusal(message: str) -> bool:
    """The server answered but did not accept this user name or password."""
    lowered = message.lower()
    return ("password authentication failed" in lowered or "no password supplied" in lowered
            or ("does not exist" in lowered and "role" in lowered))


def postgresql_reason(message: str, where: str, database: str | None, user: str | None) -> str:
    """The driver's message as a sentence; the driver's own words kept after the sentence."""
    lowered = message.lower()
    first = " ".join(message.split()).removeprefix("connection failed: ")
    if "connection refused" in lowered:
        return f"no database server answers at {where} (connection refused): is PostgreSQL running there?"
    if "timeout" in lowered or "timed out" in lowered:
        return f"the database server at {where} did not answer within {PG_CONNECT_TIMEOUT_S} seconds"
    if "resolve host" in lowered or "name or service not known" in lowered or "nodename nor servname" in lowered:
        return f"the server name in {where} is not known on this network"
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return f"the server at {where} refused the user name or password of {user or 'this user'}"
    if "does not exist" in lowered and "database" in lowered:
        return f"the server at {where} has no database named '{database}'"
    if "does not exist" in lowered and "role" in lowered:
        return f"the server at {where} has no user named '{user}'"
    return f"the database server at {where} cannot be used: {first}"
