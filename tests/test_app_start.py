"""`clinicflow gui --demo` through the real entry point (a subprocess, offscreen): the demo is
loaded into an empty database, and SIGTERM closes the app cleanly with its runtime stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.store import open_database
from app.store.workflows import list_workflows

REPO = Path(__file__).resolve().parent.parent


def runtime_rows(url: str) -> int:
    from sqlalchemy import func, select

    from app.store.schema import runtimes

    db = open_database(url)
    try:
        with db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(runtimes)).scalar_one())
    finally:
        db.dispose()


def wait_for_runtime_rows(url: str) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and runtime_rows(url) == 0:
        time.sleep(0.2)
    return runtime_rows(url)


@pytest.mark.parametrize("command", [["gui", "--demo"], ["--demo"]], ids=["gui --demo", "--demo"])
def test_gui_demo_loads_the_demo_into_an_empty_database_and_sigterm_exits_cleanly(
        tmp_path: Path, command: list[str]) -> None:
    """`clinicflow --demo` (the README's first command) is `clinicflow gui --demo`."""
    url = f"sqlite:///{tmp_path / 'clinic.sqlite3'}"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, "-m", "app", "--db", url, *command], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        names: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(names) < 4 and proc.poll() is None:
            time.sleep(0.3)
            if (tmp_path / "clinic.sqlite3").exists():
                db = open_database(url)
                try:
                    with db.read() as conn:
                        names = [w.name for w in list_workflows(conn)]
                finally:
                    db.dispose()
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert len(names) == 4
        assert wait_for_runtime_rows(url) == 1  # the in-app runtime announced itself
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, proc.stderr.read() if proc.stderr else ""
    assert runtime_rows(url) == 0  # a runtime that stopped cleanly no longer announces itself
