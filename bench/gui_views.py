"""Monitoring-panel benchmarks: cold start to a painted window, the Runs tab on 1,000,000 runs,
and how long the GUI thread is ever blocked while the in-app runtime executes 1,000 runs.

Prints one JSON object per line: {"bench", "value", "unit", "baseline", "ratio", "target"}.
Each figure is measured against a baseline in the same run:
- cold start: a bare PySide6 window with an empty table, started the same way;
- Runs tab: Qt's own QSqlQueryModel (QSQLITE, 256-row fetchMore pages) over the same file;
- GUI block: the same window idle, with no runtime executing.
Targets (issue 6, issue 5): cold start <= 1.0 s, Runs tab open <= 150 ms, status filter <= 200 ms,
jump to the last row <= 100 ms, extra memory <= 50 MB, GUI thread blocked <= 50 ms.
"""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_PREFERRED_BINDING", "PySide6")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RUNS = int(os.environ.get("CLINICFLOW_BENCH_RUNS", "1000000"))
EXECUTED_RUNS = int(os.environ.get("CLINICFLOW_BENCH_EXECUTED_RUNS", "1000"))


def emit(bench: str, value: float, unit: str, baseline: float, target: float | None) -> None:
    ratio = value / baseline if baseline else None
    print(json.dumps({"bench": bench, "value": round(value, 2), "unit": unit, "baseline": round(baseline, 2),
                      "ratio": None if ratio is None else round(ratio, 3), "target": target}), flush=True)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


# --- cold start ------------------------------------------------------------------------------------

# Imports in the order `python -m app` makes them (the app's own modules before PySide6's).
_COLD_APP = """
import sys, time
from app.views import create_main_window
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication
window = create_main_window(sys.argv[1], start_runtime=False, actor="bench")
class Painted(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            print("painted", flush=True); sys.exit(0) if False else QApplication.instance().exit(0)
        return False
flt = Painted(); window.installEventFilter(flt)
window.show()
QApplication.instance().exec()
window.shutdown()
"""

_COLD_BASE = """
import sys
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QMainWindow, QTableWidget
app = QApplication([])
app.setStyle("Fusion")
window = QMainWindow(); window.setCentralWidget(QTableWidget(20, 5)); window.resize(1280, 800)
class Painted(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            print("painted", flush=True); app.exit(0)
        return False
flt = Painted(); window.installEventFilter(flt)
window.show()
app.exec()
"""


def _spawn_until_painted(code: str, *args: str) -> float:
    start = time.perf_counter()
    # Bytecode is written and used as on a practice's computer after the first start (this
    # machine sets PYTHONDONTWRITEBYTECODE, which would compile all of the app on every start).
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, cwd=REPO,
                            env={**env, "PYTHONPATH": str(REPO)}, text=True)
    assert proc.stdout is not None
    for text in proc.stdout:
        if text.startswith("painted"):
            elapsed = time.perf_counter() - start
            break
    else:
        raise RuntimeError("the window never painted")
    proc.wait(30)
    return elapsed


def bench_cold_start(folder: Path) -> None:
    from app.store import open_database
    from app.store.demo import load_demo

    url = f"sqlite:///{folder / 'cold.sqlite3'}"
    db = open_database(url)
    load_demo(db, "bench")
    db.dispose()
    _spawn_until_painted(_COLD_BASE)  # warm the disk cache for both, and write the bytecode
    _spawn_until_painted(_COLD_APP, url)
    # Alternated A/B, five of each, medians (not the minimum: that flatters).
    ours_all, base_all = [], []
    for _ in range(5):
        ours_all.append(_spawn_until_painted(_COLD_APP, url))
        base_all.append(_spawn_until_painted(_COLD_BASE))
    ours, base = statistics.median(ours_all), statistics.median(base_all)
    emit("gui_cold_start_to_painted_window", ours * 1000, "ms", base * 1000, 1000.0)
    print(json.dumps({"bench": "gui_cold_start_to_painted_window_range", "min_ms": round(min(ours_all) * 1000, 1),
                      "max_ms": round(max(ours_all) * 1000, 1), "baseline_min_ms": round(min(base_all) * 1000, 1),
                      "baseline_max_ms": round(max(base_all) * 1000, 1), "n": 5}), flush=True)


# --- the Runs tab on a million runs ------------------------------------------------------------------

def fill_runs(path: Path, count: int) -> int:
    """A workflow with `count` runs of every status, inserted directly with executemany in chunks."""
    from app.store import open_database

    open_database(f"sqlite:///{path}").dispose()
    con = sqlite3.connect(path)
    stamp = "2025-01-01 00:00:00.000000"
    draft = json.dumps({"format": "clinicflow.workflow/1", "name": "Bench", "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}}], "edges": []})
    con.execute("INSERT INTO workflows (name, draft, enabled, archived, created_at, updated_at) "
                "VALUES ('Recall reminder', ?, 1, 0, ?, ?)", (draft, stamp, stamp))
    con.execute("INSERT INTO patients (first_name, last_name, email, created_at, updated_at) "
                "VALUES ('Ann', 'Smith', 'ann@example.org', ?, ?)", (stamp, stamp))
    workflow_id = con.execute("SELECT max(id) FROM workflows").fetchone()[0]
    statuses = ("completed",) * 6 + ("failed", "cancelled", "waiting", "running")
    base = datetime(2025, 1, 1)

    def rows(first: int, last: int) -> Any:
        for i in range(first, last):
            at = (base + timedelta(seconds=30 * i)).strftime("%Y-%m-%d %H:%M:%S.%f")
            status = statuses[i % len(statuses)]
            done = None if status in ("waiting", "running") else at
            yield (workflow_id, 1, status, "manual", "patient", 1, "bench", at, done, at,
                   "Patient Ann Smith (patient:1) has no email address" if status == "failed" else None)

    chunk = 50_000
    for first in range(0, count, chunk):
        con.executemany(
            "INSERT INTO runs (workflow_id, version, status, trigger_kind, record_type, record_id, started_by, "
            "triggered_at, finished_at, updated_at, error_message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(first, min(count, first + chunk)))
        con.commit()
    con.execute("ANALYZE")
    con.commit()
    con.close()
    return int(workflow_id)


def _painted(widget: Any, action: Callable[[], Any], ready: Callable[[], bool] | None = None) -> float:
    """Seconds from `action()` until `widget` (a view's viewport) has painted and, with `ready`,
    until `ready()` holds (the Runs model reads its rows off the GUI thread: the rows are on
    screen once it has settled)."""
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication

    seen = [False]

    class Watch(QObject):
        def eventFilter(self, obj: Any, event: Any) -> bool:
            if event.type() == QEvent.Type.Paint:
                seen[0] = True
            return False

    watch = Watch()
    widget.installEventFilter(watch)
    start = time.perf_counter()
    action()
    widget.update()
    deadline = start + 30
    while not (seen[0] and (ready is None or ready())) and time.perf_counter() < deadline:
        QApplication.processEvents()
    elapsed = time.perf_counter() - start
    widget.removeEventFilter(watch)
    return elapsed


def bench_runs_tab(folder: Path) -> None:
    from PySide6.QtSql import QSqlDatabase, QSqlQueryModel
    from PySide6.QtWidgets import QApplication, QTableView

    from app.store import open_database
    from app.views.runs_view import RunsView
    from app.views.theme import apply_theme

    path = folder / "million.sqlite3"
    started = time.perf_counter()
    workflow_id = fill_runs(path, RUNS)
    print(json.dumps({"note": f"inserted {RUNS} runs in {time.perf_counter() - started:.1f} s"}), file=sys.stderr)
    app = QApplication.instance() or QApplication([])
    apply_theme(app)
    db = open_database(f"sqlite:///{path}")
    host = QTableView()  # a stand-in parent window of main-window size
    host.resize(1280, 800)
    host.show()
    QApplication.processEvents()

    memory_before = rss_mb()
    holder: dict[str, Any] = {}

    def open_tab() -> None:
        view = RunsView(db, workflow_id)
        view.resize(1200, 760)
        view.show()
        holder["view"] = view

    def settled() -> bool:
        return bool(holder["view"].model.settled)

    open_ms = _painted_view(holder, open_tab, ready=settled) * 1000
    view = holder["view"]
    filter_ms = _painted(view.table.viewport(), lambda: view.set_status("failed"), settled) * 1000
    view.set_status(None)
    while not settled():
        QApplication.processEvents()
    last_ms = _painted(view.table.viewport(), view.table.scrollToBottom, settled) * 1000
    assert view.model.run_at(view.model.rowCount() - 1).id == 1
    for _ in range(20):  # scroll around like a person would, then measure what stayed
        view.table.verticalScrollBar().setValue(view.table.verticalScrollBar().maximum() // 20 * _)
        QApplication.processEvents()
    memory = rss_mb() - memory_before

    # Baseline: Qt's QSqlQueryModel over the same rows (lazy fetchMore of 256 rows at a time).
    qdb = QSqlDatabase.addDatabase("QSQLITE", "bench")
    qdb.setDatabaseName(str(path))
    qdb.open()
    columns = ("runs.status, runs.id, runs.triggered_at, runs.finished_at, runs.record_type || ':' || runs.record_id, "
               "runs.version, runs.started_by")
    base_memory_before = rss_mb()
    base: dict[str, Any] = {}

    def open_base() -> None:
        model = QSqlQueryModel()
        model.setQuery(f"SELECT {columns} FROM runs WHERE workflow_id = {workflow_id} ORDER BY id DESC", qdb)
        table = QTableView()
        table.setModel(model)
        table.verticalHeader().hide()
        table.resize(1200, 760)
        table.show()
        base["model"], base["table"] = model, table

    base_open = _painted_view(base, open_base, key="table") * 1000
    table, model = base["table"], base["model"]
    base_filter = _painted(table.viewport(), lambda: model.setQuery(
        f"SELECT {columns} FROM runs WHERE workflow_id = {workflow_id} AND status = 'failed' ORDER BY id DESC",
        qdb)) * 1000
    model.setQuery(f"SELECT {columns} FROM runs WHERE workflow_id = {workflow_id} ORDER BY id DESC", qdb)

    def base_last() -> None:
        while model.canFetchMore():
            model.fetchMore()
        table.scrollToBottom()

    base_last_ms = _painted(table.viewport(), base_last) * 1000
    base_memory = rss_mb() - base_memory_before
    emit("runs_tab_open_1m_runs", open_ms, "ms", base_open, 150.0)
    emit("runs_tab_status_filter_1m_runs", filter_ms, "ms", base_filter, 200.0)
    emit("runs_tab_jump_to_last_row_1m_runs", last_ms, "ms", base_last_ms, 100.0)
    emit("runs_tab_extra_memory_1m_runs", memory, "MB", base_memory, 50.0)
    view.close()
    table.close()
    host.close()
    db.dispose()


def _painted_view(holder: dict[str, Any], action: Callable[[], None], key: str = "view",
                  ready: Callable[[], bool] | None = None) -> float:
    """Like `_painted`, for a view created by `action` (watch its table's viewport once it exists)."""
    from PySide6.QtWidgets import QApplication, QTableView

    start = time.perf_counter()
    action()
    created = holder[key]
    table = created if isinstance(created, QTableView) else created.table
    remaining = _painted(table.viewport(), lambda: None, ready)
    QApplication.processEvents()
    return (time.perf_counter() - start) if remaining >= 0 else 0.0


# --- the GUI thread while the runtime works --------------------------------------------------------------

def _max_gap(seconds: float, until: Callable[[], bool] | None = None) -> float:
    """The longest time the GUI thread did not serve a 5 ms timer, in ms."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    last = [time.perf_counter()]
    worst = [0.0]

    def beat() -> None:
        now = time.perf_counter()
        worst[0] = max(worst[0], now - last[0])
        last[0] = now

    timer = QTimer(interval=5)
    timer.timeout.connect(beat)
    timer.start()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline and not (until and until()):
        QApplication.processEvents()
        time.sleep(0.001)
    timer.stop()
    return worst[0] * 1000


def bench_gui_block(folder: Path) -> None:
    from PySide6.QtWidgets import QApplication
    from sqlalchemy import func, select

    from app.runtime import control
    from app.store import RecordRef, open_database
    from app.store.records import add_record
    from app.store.schema import runs
    from app.store.workflows import create_workflow, publish, set_enabled
    from app.views import create_main_window
    from app.workflow import load_workflow

    url = f"sqlite:///{folder / 'busy.sqlite3'}"
    db = open_database(url)
    flow = {"format": "clinicflow.workflow/1", "name": "Busy", "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}, "position": [0, 0]},
        {"id": "check", "type": "logic.condition",
         "config": {"match": "all", "rules": [{"field": "patient.email", "op": "is_set"}]}, "position": [250, 0]},
        {"id": "note", "type": "action.add_note", "config": {"text": "Seen by the bench"}, "position": [500, 0]},
    ], "edges": [{"from": "start", "to": "check"}, {"from": "check", "port": "true", "to": "note"}]}
    with db.write() as conn:
        workflow_id = create_workflow(conn, load_workflow(flow), "bench")
        publish(conn, workflow_id, "bench")
        set_enabled(conn, workflow_id, True, "bench")
        patient = add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith",
                                               "email": "ann@example.org"}, "bench")
    window = create_main_window(url, start_runtime=False, actor="bench")
    window.resize(1280, 800)
    window.show()
    gc.freeze()  # as `run_app` does once the window is up
    window.show_all_runs()
    QApplication.processEvents()
    idle = _max_gap(2.0)

    done = threading.Event()

    def watch_progress() -> None:
        # Off the GUI thread: the measurement must not add database reads of its own there.
        while not done.is_set():
            with db.read() as conn:
                if conn.execute(select(func.count()).select_from(runs).where(
                        runs.c.status.in_(("completed", "failed")))).scalar_one() >= EXECUTED_RUNS:
                    done.set()
            time.sleep(0.25)

    # The runs are waiting to be executed (as after a burst of record events) when the in-app
    # runtime starts; what is measured is the GUI thread while the runtime works through them.
    for _ in range(EXECUTED_RUNS):
        control.start_run(db, workflow_id, record=RecordRef("patient", patient.id), actor="bench")
    window.all_runs.refresh()
    QApplication.processEvents()

    progress = threading.Thread(target=watch_progress)
    window.start_runtime()
    progress.start()
    busy = _max_gap(600.0, done.is_set)
    done.set()
    progress.join()
    window.close()
    db.dispose()
    emit("gui_thread_max_block_while_runtime_executes_1000_runs", busy, "ms", idle, 50.0)


def main() -> None:
    from PySide6.QtWidgets import QApplication

    QApplication.instance() or QApplication([])
    only = set(sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="clinicflow-bench-") as tmp:
        folder = Path(tmp)
        os.environ["XDG_CONFIG_HOME"] = str(folder / "config")  # never the user's window layout
        if not only or "cold" in only:
            bench_cold_start(folder)
        if not only or "runs" in only:
            bench_runs_tab(folder)
        if not only or "block" in only:
            bench_gui_block(folder)


if __name__ == "__main__":
    main()
