"""A write waiting for another program's SQLite lock says so after about two seconds
("waiting for the database (locked by another program)") instead of blocking silently,
and goes ahead when the lock is released."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import REPO

from app.store import open_database
from app.store.database import WAIT_MESSAGE
from app.store.records import add_record, list_records

HOLD_SECONDS = 4


def hold_write_lock(path: Path, seconds: float, held: threading.Event) -> threading.Thread:
    """Another program's connection holding SQLite's write lock (BEGIN IMMEDIATE)."""

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


def test_a_waiting_write_calls_on_wait_then_clears_it_and_proceeds(tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite3"
    db = open_database(str(path))
    notices: list[str | None] = []
    db.on_wait = notices.append
    held = threading.Event()
    holder = hold_write_lock(path, HOLD_SECONDS, held)
    try:
        assert held.wait(10)
        with db.write() as conn:
            add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith"}, "ann")
    finally:
        holder.join()
    assert notices == [WAIT_MESSAGE, None]
    with db.read() as conn:
        assert [p["first_name"] for p in list_records(conn, "patient")] == ["Ann"]
    db.dispose()


def test_a_write_without_contention_says_nothing(tmp_path: Path) -> None:
    db = open_database(str(tmp_path / "clinic.sqlite3"))
    notices: list[str | None] = []
    db.on_wait = notices.append
    with db.write() as conn:
        add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith"}, "ann")
    assert notices == []
    db.dispose()


def test_a_failing_hook_does_not_break_the_write(tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite3"
    db = open_database(str(path))

    def broken(_message: str | None) -> None:
        raise RuntimeError("status bar gone")

    db.on_wait = broken
    held = threading.Event()
    holder = hold_write_lock(path, 3, held)
    try:
        assert held.wait(10)
        with db.write() as conn:
            add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith"}, "ann")
    finally:
        holder.join()
    with db.read() as conn:
        assert len(list_records(conn, "patient")) == 1
    db.dispose()


def test_the_command_line_says_it_is_waiting_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite3"
    open_database(str(path)).dispose()
    held = threading.Event()
    holder = hold_write_lock(path, HOLD_SECONDS, held)
    try:
        assert held.wait(10)
        proc = subprocess.run([sys.executable, "-m", "app", "--db", str(path), "record", "add", "patient",
                               "first_name=Ann", "last_name=Smith"], capture_output=True, text=True, cwd=REPO,
                              timeout=60)
    finally:
        holder.join()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "patient:1\n"
    assert proc.stderr.splitlines()[0] == f"clinicflow: {WAIT_MESSAGE}"
