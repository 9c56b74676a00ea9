"""Opening the practice database: where it lives, engine settings, schema upgrades.

SQLite (the embedded default) runs in WAL mode with `synchronous=FULL`, foreign keys, a
busy timeout and IMMEDIATE write transactions, so several processes on one workstation
share it safely. PostgreSQL (psycopg 3) is for several workstations.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import platformdirs
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import NullPool

from .errors import DatabaseRefused

ENV_URL: Final = "CLINICFLOW_DATABASE_URL"
NETWORK_FILESYSTEMS: Final = frozenset({
    "nfs", "nfs4", "cifs", "smbfs", "smb3", "ncpfs", "afs", "9p", "fuse.sshfs", "sshfs",
    "davfs", "fuse.davfs2", "glusterfs", "ceph", "fuse.rclone",
})
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000


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


class Database:
    """An open practice database. `write()` for changes, `read()` for queries."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = engine.url
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.is_postgresql = engine.dialect.name == "postgresql"

    @property
    def display_name(self) -> str:
        """For the status bar and logs: the file, or server/database, never a password."""
        if self.is_sqlite:
            return f"SQLite {self.url.database}"
        return f"PostgreSQL {self.url.host or 'localhost'}:{self.url.port or 5432}/{self.url.database}"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction that commits on success; IMMEDIATE on SQLite (no upgrade deadlocks)."""
        with self.engine.begin() as conn:
            yield conn

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


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get("clinicflow_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def create_database(url: str | None = None, *, pool_size: int = 5) -> Database:
    """An engine for `url` (default: see `default_database_url`) without touching the schema."""
    full = normalize_url(url or default_database_url())
    try:
        parsed = make_url(full)
    except ArgumentError:
        raise DatabaseRefused(f"'{full}' is not a database URL (use sqlite:///PATH or postgresql+psycopg://...)") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise DatabaseRefused("an in-memory SQLite database cannot be shared by the app and its runtime; give a file path")
        path = Path(database).expanduser().resolve()
        check_sqlite_location(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        parsed = parsed.set(database=str(path))
        engine = create_engine(parsed, poolclass=NullPool if os.environ.get("CLINICFLOW_SQLITE_NULLPOOL") else None,
                               connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
    elif parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, pool_size=pool_size, max_overflow=10, pool_pre_ping=True,
                               connect_args={"connect_timeout": 10})
    else:
        raise DatabaseRefused(f"unsupported database '{parsed.get_backend_name()}': use SQLite or PostgreSQL")
    return Database(engine)


def open_database(url: str | None = None, *, migrate: bool = True, pool_size: int = 5) -> Database:
    """Open the practice database and bring its schema up to date."""
    db = create_database(url, pool_size=pool_size)
    if migrate:
        try:
            upgrade_schema(db)
        except OperationalError as exc:
            db.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DatabaseRefused(f"cannot open the database {db.display_name}: {reason}") from None
    return db


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
