"""Opening the practice database: where it lives, engine settings, schema upgrades.

SQLite (the embedded default) runs in WAL mode with `synchronous=FULL`, foreign keys, a
busy timeout and IMMEDIATE write transactions, so several processes on one workstation
share it safely. PostgreSQL (psycopg 3) is for several workstations.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

import platformdirs
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.pool import NullPool

from .errors import DatabaseRefused

ENV_URL: Final = "CLINICFLOW_DATABASE_URL"
NETWORK_FILESYSTEMS: Final = frozenset({
    "nfs", "nfs4", "cifs", "smbfs", "smb3", "ncpfs", "afs", "9p", "fuse.sshfs", "sshfs",
    "davfs", "fuse.davfs2", "glusterfs", "ceph", "fuse.rclone",
})
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000
# A write that has waited this long for another program's lock is announced (`Database.on_wait`).
SQLITE_WAIT_NOTICE_MS: Final = 2_000
WAIT_MESSAGE: Final = "waiting for the database (locked by another program)"
URL_FORMS: Final = "sqlite:///PATH or postgresql+psycopg://..."
IN_MEMORY_REFUSED: Final = "an in-memory SQLite database cannot be shared by the app and its runtime; give a file path"


def default_database_path() -> Path:
    return Path(platformdirs.user_data_dir("Clinicflow", appauthor=False)) / "clinicflow.sqlite3"


def default_database_url() -> str:
    """`CLINICFLOW_DATABASE_URL`, else a SQLite file in the user data directory."""
    return os.environ.get(ENV_URL) or f"sqlite:///{default_database_path()}"


def normalize_url(url: str) -> str:
    """Accept a plain file path or `postgresql://` and return a full SQLAlchemy URL."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def filesystem_type(path: Path, mounts: str | None = None) -> str | None:
    """The file-system type holding `path`, from /proc/mounts (None where unknown)."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    best, best_type = "", None
    target = str(path)
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        mount_point = parts[1].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) > len(best):
            best, best_type = mount_point, parts[2]
    return best_type


def check_sqlite_location(path: Path, mounts: str | None = None) -> None:
    """Refuse a SQLite file on a network share: its locking is not safe there."""
    shown = str(path)
    if sys.platform == "win32" and (shown.startswith("\\\\") or shown.startswith("//")):
        fs = "a Windows network share"
    else:
        kind = filesystem_type(path, mounts)
        fs = f"a network file system ({kind})" if kind in NETWORK_FILESYSTEMS else None
    if fs:
        raise DatabaseRefused(
            f"The database file {shown} is on {fs}. SQLite cannot be shared safely between "
            "computers; to share one database between workstations use PostgreSQL "
            "(--db postgresql+psycopg://user@server/clinicflow)."
        )


WaitHook = Callable[[str | None], None]
T = TypeVar("T")


class _Queued:
    """Work queued for the next SQLite write transaction of this process (`Database.grouped`)."""

    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work: Callable[[Connection], Any]) -> None:
        self.work = work
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class Database:
    """An open practice database. `write()` for changes, `read()` for queries.

    `on_wait`: set it to be told when a write waits for a lock another program holds
    (SQLite only: PostgreSQL writers do not share one lock). It is called, on the thread
    doing the write, with `WAIT_MESSAGE` once the write has waited about 2 seconds, and
    with None when the write goes ahead or gives up (after 30 s, "database is locked").
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = engine.url
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.is_postgresql = engine.dialect.name == "postgresql"
        self.on_wait: WaitHook | None = None
        # SQLite has one writer at a time. Writers of this process take turns here first, so
        # one that waits (a start behind the runtime's batch) goes ahead the moment the lock is
        # free instead of sleeping in SQLite's busy handler (1, 2, 5, 10, 15, 20 ms ...).
        # Re-entrant, like before: a write inside a write on one thread still goes to SQLite.
        # Work queued by `grouped` (starts) is done by whoever holds the turn next, in its
        # transaction: starts arriving together, or behind a batch, share one commit.
        self._turn: threading.Condition | None = threading.Condition() if self.is_sqlite else None
        self._turn_owner: int | None = None
        self._turn_depth = 0
        self._queued: list[_Queued] = []

    def _notify_wait(self, message: str | None) -> None:
        hook = self.on_wait
        if hook is not None:
            try:
                hook(message)
            except Exception:  # a notice must never break the write it is about
                logging.getLogger(__name__).exception("the database wait hook failed")

    @property
    def display_name(self) -> str:
        """For the status bar and logs: the file, or server/database, never a password."""
        if self.is_sqlite:
            return f"SQLite {self.url.database}"
        return f"PostgreSQL {self.url.host or 'localhost'}:{self.url.port or 5432}/{self.url.database}"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction that commits on success; IMMEDIATE on SQLite (no upgrade deadlocks).
        On SQLite it also does the work `grouped` queued meanwhile, each in its own savepoint,
        before it commits."""
        if self._turn is None:
            with self.engine.begin() as conn:
                yield conn
            return
        self._take_turn(None)
        try:
            with self._transaction() as conn:
                yield conn
        finally:
            self._give_turn()

    def grouped(self, work: Callable[[Connection], T]) -> T:
        """`work(conn)` in a write transaction that may hold other callers' work too (group
        commit): on SQLite, calls arriving together, or while another write of this process
        (the runtime's batch) is in progress, are done by the next holder of the write turn,
        each in its own savepoint, and committed together. Returns `work`'s result, or raises
        its error (which undid only its own savepoint), only after the commit that holds it;
        if that commit fails, every caller in it gets the commit's error. On PostgreSQL, and
        inside a write on the same thread, it is `write()`."""
        if self._turn is None or self._turn_owner == threading.get_ident():
            with self.write() as conn:
                return work(conn)
        item = _Queued(work)
        with self._turn:
            self._queued.append(item)
        if self._take_turn(item):
            try:
                with self._transaction(alone=True):
                    pass  # its work is queued: `_transaction` does it with any other queued
            except BaseException:
                with self._turn:
                    if not item.done:
                        if item in self._queued:
                            self._queued.remove(item)
                        raise
            finally:
                self._give_turn()
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[no-any-return]

    def _take_turn(self, item: _Queued | None) -> bool:
        """Wait for the write turn (True, now held) or, for queued work, until another holder
        did it (False)."""
        assert self._turn is not None
        me = threading.get_ident()
        with self._turn:
            while True:
                if item is not None and item.done:
                    return False
                if self._turn_owner is None or self._turn_owner == me:
                    self._turn_owner = me
                    self._turn_depth += 1
                    return True
                self._turn.wait()

    def _give_turn(self) -> None:
        assert self._turn is not None
        with self._turn:
            self._turn_depth -= 1
            if self._turn_depth == 0:
                self._turn_owner = None
                self._turn.notify_all()

    @contextmanager
    def _transaction(self, *, alone: bool = False) -> Iterator[Connection]:
        """The turn holder's transaction: its own work, then the queued work, then COMMIT.
        `alone`: the holder has no work of its own (a grouped caller)."""
        assert self._turn is not None
        taken: list[_Queued] = []
        try:
            with self.engine.begin() as conn:
                yield conn
                if self._turn_depth == 1:  # a write inside a write leaves the queue to the outer one
                    self._do_queued(conn, taken, alone)
        except BaseException as exc:
            self._settle(taken, exc)
            raise
        self._settle(taken, None)

    def _do_queued(self, conn: Connection, taken: list[_Queued], alone: bool) -> None:
        assert self._turn is not None
        with self._turn:
            taken.extend(self._queued)
            self._queued.clear()
        if alone and len(taken) == 1:
            # The only work in this transaction needs no savepoint: its error rolls it all back.
            item = taken[0]
            try:
                item.result = item.work(conn)
            except Exception as exc:
                item.error = exc
                raise
            return
        for item in taken:
            try:
                with conn.begin_nested():
                    item.result = item.work(conn)
            except Exception as exc:  # its own savepoint is undone; the others go on
                item.error = exc

    def _settle(self, taken: list[_Queued], failed: BaseException | None) -> None:
        """After COMMIT (or its failure): the callers whose work it held may return."""
        if not taken:
            return
        assert self._turn is not None
        with self._turn:
            for item in taken:
                if failed is not None and item.error is None:
                    item.error, item.result = failed, None  # not committed: nothing of it exists
                item.done = True
            self._turn.notify_all()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only snapshot that never takes SQLite's write lock."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(clinicflow_readonly=True)
            try:
                yield conn
            finally:
                conn.rollback()

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite(db: Database) -> None:
    @event.listens_for(db.engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        # Short, so a write blocked by another program is noticed (`_begin_write` keeps
        # trying up to SQLITE_BUSY_TIMEOUT_MS). WAL readers never wait for a writer.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_WAIT_NOTICE_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(db.engine, "begin")
    def _on_begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get("clinicflow_readonly", False)
        if readonly:
            conn.exec_driver_sql("BEGIN")
        else:
            _begin_write(db, conn.connection.driver_connection)


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _begin_write(db: Database, dbapi_conn: Any) -> None:
    """BEGIN IMMEDIATE (no upgrade deadlocks); after SQLITE_WAIT_NOTICE_MS of waiting for
    another program's lock, tell `db.on_wait` and keep trying up to SQLITE_BUSY_TIMEOUT_MS."""
    try:
        dbapi_conn.execute("BEGIN IMMEDIATE")
        return
    except sqlite3.OperationalError as exc:
        if not _is_locked(exc):
            raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
    deadline = time.monotonic() + (SQLITE_BUSY_TIMEOUT_MS - SQLITE_WAIT_NOTICE_MS) / 1000
    db._notify_wait(WAIT_MESSAGE)
    try:
        while True:
            try:
                dbapi_conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc) or time.monotonic() >= deadline:
                    # As SQLAlchemy would have raised it: callers catch its errors.
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
    finally:
        db._notify_wait(None)


def sqlite_path(url: str | None = None) -> Path | None:
    """The file of a SQLite URL (or plain path), None for another database."""
    full = normalize_url(url or default_database_url())
    try:
        parsed = make_url(full)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser().resolve()


def _check_sqlite_folder(path: Path, create: bool) -> None:
    """Refuse a file in a folder that does not exist, unless creating was chosen: a typo in
    a path must not look like a practice whose data vanished. The default database (in the
    user data directory) is created on first use."""
    if path.parent.is_dir():
        return
    if create or path == default_database_path().resolve():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseRefused(f"The folder {path.parent} cannot be created: {exc.strerror or exc}") from None
        return
    if path.parent.exists():
        raise DatabaseRefused(f"{path.parent} is not a folder")
    raise DatabaseRefused(f"The folder {path.parent} does not exist")


def create_database(url: str | None = None, *, pool_size: int = 5, create: bool = False) -> Database:
    """An engine for `url` (default: see `default_database_url`) without touching the schema.

    A SQLite file in a folder that does not exist is refused unless `create` (the default
    database's folder is created on first use); a new file in an existing folder is
    created when first written, as every command creates the schema as needed.
    """
    full = normalize_url(url or default_database_url())
    try:
        parsed = make_url(full)
    except ArgumentError:
        raise DatabaseRefused(f"'{full}' is not a database URL (use {URL_FORMS})") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise DatabaseRefused(IN_MEMORY_REFUSED)
        path = Path(database).expanduser().resolve()
        check_sqlite_location(path)
        _check_sqlite_folder(path, create)
        parsed = parsed.set(database=str(path))
        engine = create_engine(parsed, poolclass=NullPool if os.environ.get("CLINICFLOW_SQLITE_NULLPOOL") else None,
                               connect_args={"check_same_thread": False, "timeout": SQLITE_WAIT_NOTICE_MS / 1000})
        db = Database(engine)
        _configure_sqlite(db)
        return db
    elif parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        # No pre-ping on every checkout (a round trip per transaction): a connection is
        # pinged only after lying idle in the pool (`_ping_idle_connections`); a server that
        # went away meanwhile fails the statement, which invalidates the whole pool, and the
        # next transaction connects afresh. Connections are recycled hourly.
        engine = create_engine(parsed, pool_size=pool_size, max_overflow=10, pool_recycle=3600,
                               connect_args={"connect_timeout": 10})
        _ping_idle_connections(engine)
    else:
        raise DatabaseRefused(f"unsupported database '{parsed.get_backend_name()}': use SQLite or PostgreSQL")
    return Database(engine)


# A pooled connection idle longer than this is pinged before use (a server restarted
# meanwhile is noticed without failing the caller's first statement).
IDLE_PING_SECONDS: Final = 2.0


def _ping_idle_connections(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return  # just connected, or in steady use: no round trip
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            # The pool discards this connection and checks out (or makes) another.
            raise DisconnectionError(str(exc)) from exc


def open_database(url: str | None = None, *, migrate: bool = True, pool_size: int = 5,
                  create: bool = False) -> Database:
    """Open the practice database and bring its schema up to date.

    `create`: also make the folders of a new SQLite file (an explicit choice: the app's
    "Create a new database", `clinicflow init`); see `create_database`.
    """
    db = create_database(url, pool_size=pool_size, create=create)
    if migrate:
        try:
            upgrade_schema(db)
        except (OperationalError, DatabaseError) as exc:
            db.dispose()
            reason = reason_in_words(exc, db.url)
            raise DatabaseRefused(f"cannot open the database {db.display_name}: {reason}") from None
    return db


def reason_in_words(exc: BaseException, url: URL, *, name_server: bool = False) -> str:
    """Why a database could not be used, for a person: one line, no driver class names
    or links, never a password. `name_server`: also say which server refused."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    if url.get_backend_name() == "sqlite":
        if "file is not a database" in text:
            return f"the file {url.database} is not a database"
        if "unable to open database file" in text:
            return f"the file {url.database} cannot be opened (check that the folder can be written to)"
        if "database is locked" in text:
            return "the database is locked by another program"
        return text.removeprefix("(sqlite3.OperationalError) ")
    where = f"The PostgreSQL server at {url.host or 'localhost'}:{url.port or 5432}"
    if "Connection refused" in text:
        return f"{where} did not answer (connection refused: is it running, and on that port?)"
    if "timeout expired" in text or "timed out" in text:
        return f"{where} did not answer in time"
    if "failed to resolve host" in text or "could not translate host name" in text:
        return f"The server name '{url.host}' was not found"
    if "FATAL:" in text:
        said = text.split("FATAL:", 1)[1].strip()
        return f"{where} refused: {said}" if name_server else said
    if "failed:" in text:
        return f"{where} refused the connection: {text.rsplit('failed:', 1)[1].strip()}"
    return text


def check_database(url: str | None, *, timeout: float = 4.0, allow_new: bool = False) -> str | None:
    """None when `url` names a database that can be opened now, else the reason in words.

    Quick (PostgreSQL: at most `timeout` seconds to connect) and harmless: it creates
    nothing, not even a SQLite file. A SQLite file that does not exist yet is a reason
    ("There is no database ...") unless `allow_new`, so creating one stays a choice.
    """
    try:
        full = normalize_url(url or default_database_url())
        parsed = make_url(full)
    except ArgumentError:
        return f"'{url}' is not a database URL (use {URL_FORMS})"
    if parsed.get_backend_name() == "sqlite":
        return _check_sqlite_file(full, allow_new)
    if parsed.get_backend_name() != "postgresql":
        return f"unsupported database '{parsed.get_backend_name()}': use SQLite or PostgreSQL"
    parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, poolclass=NullPool, connect_args={"connect_timeout": max(1, round(timeout))})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        return reason_in_words(exc, parsed, name_server=True)
    finally:
        engine.dispose()
    return None


def _check_sqlite_file(full: str, allow_new: bool) -> str | None:
    path = sqlite_path(full)
    if path is None:
        return IN_MEMORY_REFUSED
    try:
        check_sqlite_location(path)
    except DatabaseRefused as refused:
        return str(refused)
    if not path.parent.is_dir():
        return f"{path.parent} is not a folder" if path.parent.exists() else f"The folder {path.parent} does not exist"
    if not path.exists():
        if not allow_new:
            return f"There is no database at {path} yet"
        return None if os.access(path.parent, os.W_OK) else f"The folder {path.parent} cannot be written to"
    if path.is_dir():
        return f"{path} is a folder, not a database file"
    try:
        # Read-only and without creating anything; WAL readers do not wait for a writer.
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=1)) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            return f"The file {path} is not a database"
        return f"The file {path} cannot be opened: {exc}"
    return None


_MIGRATIONS: Final = Path(__file__).with_name("migrations")


def head_revision() -> str:
    """The newest migration; revisions are numbered files, applied in order."""
    names = [p.name for p in (_MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")]
    return max(re.match(r"\d{4}", n).group(0) for n in names)  # type: ignore[union-attr]


def current_revision(conn: Connection) -> str | None:
    try:
        with conn.begin_nested():
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # no version table yet: an empty database
        return None


# The migration that brings the team roles and their functions (DESIGN section 15).
ROLES_REVISION: Final = "0004"


def upgrade_schema(db: Database, revision: str = "head") -> None:
    """Apply pending migrations (cheap when the schema is current: one query); `revision`
    stops at an older one (tests of a migration start from the one before it)."""
    with db.read() as conn:
        if current_revision(conn) == (head_revision() if revision == "head" else revision):
            return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with db.engine.begin() as conn:
        if db.is_postgresql:
            # Two workstations upgrading at once take turns.
            conn.execute(text("SELECT pg_advisory_xact_lock(7312001)"))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        if db.is_postgresql and (current_revision(conn) or "") >= ROLES_REVISION:
            # Once for all the migrations just run: every table they made gets the team roles'
            # privileges (DESIGN section 15), where those roles exist.
            from .roles import grant_privileges

            grant_privileges(conn)
