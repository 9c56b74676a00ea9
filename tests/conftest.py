"""Shared fixtures: a fresh real database per test (SQLite file, or a PostgreSQL schema
when CLINICFLOW_TEST_PG_URL is set), user data kept away from the real home directory,
and a way to run the command line in-process or as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_PREFERRED_BINDING", "PySide6")

PG_URL = os.environ.get("CLINICFLOW_TEST_PG_URL")
# Real PostgreSQL login roles (`owner`, `login`) for the roles and sign-in tests; the start-up
# fixtures (`settings`, `windows`) of the dialog tests.
pytest_plugins = ["pg_logins", "dialog_driver"]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _private_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's real database, settings or window layout."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("CLINICFLOW_DATABASE_URL", raising=False)
    # Messages in tests go out at any hour unless a test sets quiet hours (DESIGN section 13).
    monkeypatch.setenv("CLINICFLOW_DEFAULT_QUIET_HOURS", "off")


# How long a test's own threads may take to finish after it (a runtime stopping, a server
# shutting down) before they count as left behind.
THREAD_GRACE_SECONDS = 5.0


@pytest.fixture(autouse=True)
def _no_thread_left_running() -> Iterator[None]:
    """A test that leaves a thread of ours running fails (napari's conftest does the same):
    a runtime or server not stopped by its test would go on writing into the next one."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_GRACE_SECONDS
    while True:
        # Threads Qt or a C library started and Python only saw pass by are not ours to stop.
        left = [t for t in threading.enumerate()
                if t not in before and t.is_alive() and not isinstance(t, threading._DummyThread)]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if left:
        pytest.fail(f"the test left threads running: {', '.join(sorted(t.name for t in left))}", pytrace=False)


def _pg_schema_url(schema: str) -> str:
    assert PG_URL is not None
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose connections all work in a fresh, empty PostgreSQL schema."""
    if not PG_URL:
        pytest.skip("CLINICFLOW_TEST_PG_URL is not set")
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'clinic.sqlite3'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on a real SQLite file and on real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'clinic.sqlite3'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def db(db_url: str) -> Iterator[object]:
    from app.store import open_database

    database = open_database(db_url)
    yield database
    database.dispose()


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], db_url: str):  # type: ignore[no-untyped-def]
    """Run `clinicflow ARGS` in-process against the test database."""
    from app.cli import main

    def run(*args: str, stdin: str | None = None) -> CliResult:
        capsys.readouterr()
        old_stdin = sys.stdin
        if stdin is not None:
            import io

            sys.stdin = io.StringIO(stdin)
        try:
            code = main(["--db", db_url, *args])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        finally:
            sys.stdin = old_stdin
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_clinicflow(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
                   stdin: str | None = None) -> CliResult:
    """Run the real entry point (`python -m app`) as a subprocess."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=REPO, input=stdin)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
