"""The History panel (`historyView`) on a real SQLite file and real PostgreSQL: newest first,
filters by what it was about, by person and by date, pages of 200 by keyset, CSV export of
everything matching (not only the page on screen), dates in the user's locale (en-GB)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QDate, QLocale, Qt, QThreadPool

from app.store import open_database
from app.store.history import record_action
from app.store.records import add_record, update_record
from app.store.timeutil import utcnow

WAIT = 20000


@pytest.fixture(autouse=True)
def en_gb() -> Iterator[None]:
    before = QLocale()
    QLocale.setDefault(QLocale(QLocale.Language.English, QLocale.Country.UnitedKingdom))
    yield
    QLocale.setDefault(before)


@pytest.fixture
def database(db_url: str) -> Iterator[Any]:
    db = open_database(db_url)
    yield db
    db.dispose()


@pytest.fixture
def panel(qtbot: Any, database: Any) -> Iterator[Any]:
    from app.views.history_view import HistoryView

    view = HistoryView(database)
    qtbot.addWidget(view)
    view.resize(1000, 500)
    view.show()
    qtbot.waitUntil(lambda: view.page is not None, timeout=WAIT)
    yield view
    view.close()
    QThreadPool.globalInstance().waitForDone(WAIT)


def reread(qtbot: Any, view: Any, change: Any) -> None:
    """Do `change` (a filter edit, a page button) and wait for the page it asks for."""
    with qtbot.waitSignal(view.loaded, timeout=WAIT):
        change()


def cells(view: Any, column: int) -> list[str]:
    return [view.table.item(row, column).text() for row in range(view.table.rowCount())]


def some_history(db: Any) -> None:
    with db.write() as conn:
        ref = add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith", "email": "ann@example.org"},
                         "setup")
        add_record(conn, "patient", {"first_name": "Bob", "last_name": "Jones"}, "setup")
    with db.write() as conn:
        update_record(conn, ref, {"email": "ann.smith@example.org"}, "maria")


def test_newest_first_in_words_and_filtered_by_subject_person_and_date(qtbot: Any, database: Any, panel: Any) -> None:
    assert "Nothing has been done yet" in panel.empty.text() and panel.empty.isVisible()
    some_history(database)
    reread(qtbot, panel, panel.reload)
    assert cells(panel, 1) == ["maria", "setup", "setup"]
    assert cells(panel, 2) == ["Changed a record", "Added a record", "Added a record"]
    assert cells(panel, 3) == ["Ann Smith (patient)", "Bob Jones (patient)", "Ann Smith (patient)"]
    assert cells(panel, 4)[0] == "Email: ann@example.org → ann.smith@example.org"
    # en-GB: day/month/year and a 24-hour clock, in this computer's zone.
    now = QLocale().toString(QDate.currentDate(), "dd/MM/yyyy")
    assert cells(panel, 0)[0].startswith(now) and len(cells(panel, 0)[0]) == len("01/12/2026 18:34")
    assert panel.count_label.text() == "3 entries"

    reread(qtbot, panel, lambda: panel.person.setText("maria"))
    assert cells(panel, 1) == ["maria"]
    reread(qtbot, panel, lambda: (panel.person.clear(), panel.subject.setText("patient:1")))  # the advanced form
    assert cells(panel, 3) == ["Ann Smith (patient)", "Ann Smith (patient)"]
    reread(qtbot, panel, lambda: panel.subject.setText("jones"))  # a name, as the placeholder says
    assert cells(panel, 3) == ["Bob Jones (patient)"]
    assert panel.subject.placeholderText() == "Search by name…" and "patient:12" in panel.subject.toolTip()
    tomorrow = QDate.currentDate().addDays(1)
    reread(qtbot, panel, lambda: panel.since.setDate(tomorrow))
    assert panel.table.rowCount() == 0 and panel.empty.text() == "Nothing matches these filters."
    assert not panel.export_button.isEnabled()


def test_pages_of_200_by_keyset_and_csv_export_of_everything_matching(
        qtbot: Any, database: Any, panel: Any, tmp_path: Path) -> None:
    with database.write() as conn:
        for number in range(450):
            record_action(conn, "maria" if number % 3 else "setup", "run.cancel", f"run:{number + 1}")
    reread(qtbot, panel, panel.reload)
    assert panel.count_label.text() == "1 to 200 of 450 entries"
    assert cells(panel, 3)[0] == "Run 450" and cells(panel, 2)[0] == "Cancelled a run"
    assert not panel.newer_button.isEnabled() and panel.older_button.isEnabled()
    reread(qtbot, panel, lambda: qtbot.mouseClick(panel.older_button, Qt.MouseButton.LeftButton))
    assert panel.count_label.text() == "201 to 400 of 450 entries" and cells(panel, 3)[0] == "Run 250"
    reread(qtbot, panel, lambda: qtbot.mouseClick(panel.older_button, Qt.MouseButton.LeftButton))
    assert panel.count_label.text() == "401 to 450 of 450 entries" and cells(panel, 3)[-1] == "Run 1"
    assert not panel.older_button.isEnabled()
    reread(qtbot, panel, lambda: qtbot.mouseClick(panel.newer_button, Qt.MouseButton.LeftButton))
    assert cells(panel, 3)[0] == "Run 250"

    reread(qtbot, panel, lambda: panel.person.setText("maria"))
    target = tmp_path / "history.csv"
    with qtbot.waitSignal(panel.exported, timeout=WAIT) as said:
        panel.export_csv(target)
    assert said.args == [f"Exported 300 entries to {target}"]
    rows = list(csv.reader(target.open(encoding="utf-8")))
    assert rows[0] == ["at", "actor", "action", "subject", "detail"]
    assert len(rows) == 301 and {r[1] for r in rows[1:]} == {"maria"}
    assert rows[1][3] == "run:450" and rows[-1][3] == "run:2"   # newest first, every page
    assert not (tmp_path / "history.csv.part").exists()


def test_export_to_a_folder_that_does_not_exist_says_so_in_one_line(
        qtbot: Any, database: Any, panel: Any, tmp_path: Path) -> None:
    some_history(database)
    target = tmp_path / "missing" / "history.csv"
    with qtbot.waitSignal(panel.exported, timeout=WAIT) as said:
        panel.export_csv(target)
    assert said.args[0].startswith("Not exported: ") and "No such file or directory" in said.args[0]
    assert "\n" not in said.args[0] and "Error" not in said.args[0]
    assert panel.message.isVisible()


def test_the_history_dock_in_the_main_window_follows_what_is_done(qtbot: Any, db_url: str, database: Any) -> None:
    from app.views import create_main_window
    from app.views.main_window import app_settings

    app_settings().clear()
    window = create_main_window(db_url, start_runtime=False, actor="Ann Tester")
    qtbot.addWidget(window)
    window.show()
    try:
        assert not window.history_dock.isVisible()
        window.findChild(type(window.history_action), "historyAction").trigger()
        view = window.findChild(type(window.history), "historyView")
        assert view is not None and window.history_dock.isVisible()
        assert window.history_action.shortcut().toString() == "Ctrl+4"
        some_history(database)
        with qtbot.waitSignal(view.loaded, timeout=WAIT):
            window.refresh_all()
            view.refresh()
        qtbot.waitUntil(lambda: view.table.rowCount() == 3, timeout=WAIT)
        since = utcnow() - timedelta(days=1)
        assert view.page is not None and all(r.at >= since for r in view.page.rows)
    finally:
        window.close()
        QThreadPool.globalInstance().waitForDone(WAIT)
        window.db.dispose()


def test_history_of_a_run_and_of_a_record_from_where_they_are_shown(qtbot: Any, db_url: str, database: Any) -> None:
    from runtime_workflows import add_patient, chain, make_workflow, node

    from app.runtime import Runtime
    from app.runtime.control import start_run
    from app.views import create_main_window
    from app.views.main_window import app_settings

    workflow_id = make_workflow(database, [node("start", "trigger.manual", record_type="patient"),
                                           node("task", "action.create_task", title="Call")], chain("start", "task"))
    ann = add_patient(database)
    run_id = start_run(database, workflow_id, record=ann, actor="maria")
    Runtime(database, "rt").run_once()
    app_settings().clear()
    window = create_main_window(db_url, start_runtime=False, actor="Ann Tester")
    qtbot.addWidget(window)
    window.show()
    try:
        window.show_run(run_id)
        inspector = window.inspector
        qtbot.waitUntil(lambda: inspector.view is not None, timeout=WAIT)
        with qtbot.waitSignal(window.history.loaded, timeout=WAIT):
            qtbot.mouseClick(inspector.findChild(type(inspector.retry_run), "runHistoryButton"),
                             Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: window.history.page is not None and window.history.page.total == 2, timeout=WAIT)
        assert window.history_dock.isVisible() and window.history.subject.text() == f"run:{run_id}"
        # Its start, and what it did: the task it made (the run is who did it), said by name.
        assert cells(window.history, 1) == [f"Run {run_id} of “Test”", "maria"]
        assert cells(window.history, 2) == ["Added a record", "Started a run"]
        assert window.history.count_label.text() == f"2 entries about Run {run_id} of “Test”"
        records = window.records
        qtbot.waitUntil(lambda: not records.model.loading and records.model.row_of(ann.id) is not None, timeout=WAIT)
        records.select(ann)
        with qtbot.waitSignal(window.history.loaded, timeout=WAIT):
            qtbot.mouseClick(records.findChild(type(records.add_button), "recordHistoryButton"),
                             Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: window.history.subject.text() == str(ann) and window.history.table.rowCount() == 1,
                        timeout=WAIT)
        assert cells(window.history, 2) == ["Added a record"]
        qtbot.waitUntil(lambda: window.history.count_label.text() == "1 entry about Ann Smith (patient)", timeout=WAIT)
    finally:
        window.close()
        QThreadPool.globalInstance().waitForDone(WAIT)
        window.db.dispose()


def test_values_are_for_people_and_records_workflows_and_runs_by_name(qtbot: Any, database: Any, panel: Any) -> None:
    """No ISO times, Python booleans, setting keys or bare references (`patient:42`, `run:1`)."""
    import re
    from datetime import UTC, datetime

    from runtime_workflows import add_patient, chain, make_workflow, node

    from app.api import settings as settings_api
    from app.runtime import Runtime
    from app.runtime.control import start_run

    workflow_id = make_workflow(database, [node("start", "trigger.manual", record_type="patient"),
                                           node("task", "action.create_task", title="Call")],
                                chain("start", "task"), name="Recall reminder")
    ann = add_patient(database)
    run_id = start_run(database, workflow_id, record=ann, actor="maria")
    Runtime(database, "rt").run_once()
    due = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    with database.write() as conn:
        add_record(conn, "task", {"title": "Update the medical history form", "patient_id": ann.id,
                                  "due_at": due.isoformat()}, "maria")
        update_record(conn, ann, {"email_opt_out": True}, "maria")
    settings_api.set_practice_setting(database, "quiet_hours", "Mon-Fri 08:00-20:00", "maria")
    settings_api.set_practice_setting(database, "quiet_hours", "off", "maria")
    reread(qtbot, panel, panel.reload)
    table: dict[tuple[str, str], tuple[str, str]] = {}
    for i in range(panel.table.rowCount()):  # the newest entry of each kind
        table.setdefault((cells(panel, 2)[i], cells(panel, 3)[i]), (cells(panel, 1)[i], cells(panel, 4)[i]))

    assert table[("Changed a practice setting", "Practice settings")] == (
        "maria", "Quiet hours: Mon-Fri 08:00-20:00 → off")
    assert table[("Changed a record", "Ann Smith (patient)")] == ("maria", "Opted out of email: No → Yes")
    assert table[("Changed contact preferences", "Ann Smith (patient)")][1] == "Opted out of email: No → Yes"
    when = due.astimezone().strftime("%d/%m/%Y %H:%M")   # en-GB, this computer's zone
    assert table[("Added a record", "task “Update the medical history form” for Ann Smith")] == (
        "maria", f"Title: Update the medical history form; Patient: Ann Smith; Due at: {when}; Status: open")
    # The workflow's own change: by its run, named by the workflow.
    assert table[("Added a record", "task “Call” for Ann Smith")][0] == f"Run {run_id} of “Recall reminder”"
    assert table[("Started a run", f"Run {run_id} of “Recall reminder”")] == (
        "maria", "for Ann Smith (patient), version 1")
    assert ("Published", "Workflow “Recall reminder”") in table
    everything = " ".join(" ".join(cells(panel, c)) for c in range(5))
    assert not re.search(r"\b(patient|task|workflow|run|setting):\w", everything), everything
    assert not re.search(r"\b(True|False)\b|\d{4}-\d\d-\d\dT\d\d:", everything), everything
    assert "quiet_hours" not in everything and "email_opt_out" not in everything

    # By name: everything about Ann (her tasks and runs too); a workflow by its name.
    reread(qtbot, panel, lambda: panel.subject.setText("ann smith"))
    about = set(cells(panel, 3))
    assert about == {"Ann Smith (patient)", "task “Call” for Ann Smith",
                     "task “Update the medical history form” for Ann Smith", f"Run {run_id} of “Recall reminder”"}
    reread(qtbot, panel, lambda: panel.subject.setText("recall rem"))
    assert set(cells(panel, 3)) == {"Workflow “Recall reminder”", f"Run {run_id} of “Recall reminder”"}


@pytest.mark.parametrize("width", [430, 1366])
def test_the_columns_fit_the_panel_without_scrolling_sideways(qtbot: Any, database: Any, panel: Any,
                                                             width: int) -> None:
    """Docked beside the runs at 1366x768 the panel is about 430 pixels wide: every column is
    on screen, a cut text ends in … and its tooltip has all of it."""
    some_history(database)
    panel.resize(width, 500)
    reread(qtbot, panel, panel.reload)
    qtbot.waitUntil(lambda: panel.table.viewport().width() < width, timeout=WAIT)
    header = panel.table.horizontalHeader()
    qtbot.waitUntil(lambda: sum(header.sectionSize(c) for c in range(5)) <= panel.table.viewport().width(),
                    timeout=WAIT)
    assert not panel.table.horizontalScrollBar().isVisible()
    assert all(header.sectionViewportPosition(c) + header.sectionSize(c) <= panel.table.viewport().width()
               for c in range(5))
    assert all(header.sectionSize(c) >= 32 for c in range(5))
    # The When column shows the whole date and time.
    metrics = panel.table.fontMetrics()
    assert header.sectionSize(0) >= metrics.horizontalAdvance(cells(panel, 0)[0])
    item = panel.table.item(0, 4)
    assert item.toolTip() == item.text() == "Email: ann@example.org → ann.smith@example.org"
    # The selected entry reads in full under the table.
    assert panel.entry.text() == "Select an entry to read all of it here."
    panel.table.setCurrentCell(0, 1)
    assert panel.entry.text() == (f"{cells(panel, 0)[0]} · maria: Changed a record — Ann Smith (patient)\n"
                                  "Email: ann@example.org → ann.smith@example.org")


def test_search_boxes_lead_with_names_and_keep_references_as_the_advanced_form(qtbot: Any, database: Any,
                                                                               panel: Any) -> None:
    from app.views.runs_view import RunsView

    runs = RunsView(database)
    qtbot.addWidget(runs)
    for box in (runs.search, panel.subject):
        assert box.placeholderText() == "Search by name…"
        assert "patient:12" in box.toolTip() and "Advanced" in box.toolTip()
    QThreadPool.globalInstance().waitForDone(WAIT)


def test_message_outcomes_read_as_what_became_of_the_message() -> None:
    from datetime import UTC, datetime

    from app.api.history import HistoryRow
    from app.views.history_view import action_in_words, detail_in_words

    at = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    skipped = HistoryRow(1, at, "clinicflow", "message.skipped", "run:7",
                         {"step": "Welcome email", "channel": "email", "run": "run:7", "patient": None,
                          "reason": "Patient Owen Price (patient:42) has opted out of email"})
    assert action_in_words("message.skipped") == "Did not send a message"
    assert detail_in_words(skipped) == "“Welcome email” not sent: Owen Price has opted out of email"
    held = HistoryRow(2, at, "clinicflow", "message.held", "run:7",
                      {"step": "Reminder text", "run": "run:7", "reason": "Quiet hours",
                       "until": "2026-12-09T08:00:00+00:00"})
    words = detail_in_words(held)
    assert words.startswith("“Reminder text” held for quiet hours, until 09/12/2026") and "T08" not in words
    assert detail_in_words(HistoryRow(3, at, "clinicflow", "message.sent", "run:7", {"step": "Welcome email"})) \
        == "“Welcome email” sent"


def test_a_long_text_is_shown_by_its_start_and_its_end_never_a_cut_reference() -> None:
    from app.api.history import TEXT_HEAD, TEXT_TAIL, shown_text
    from app.views.history_view import _plain

    assert shown_text("Called Ann about patient:12") == "Called Ann about patient:12"
    notes = "\n".join(f"2026-12-02 04:{i % 60:02d} Seen by the bench" for i in range(1000))
    shown = shown_text(notes)
    assert len(shown) <= TEXT_HEAD + TEXT_TAIL + 3 and " … " in shown
    assert notes.startswith(shown.partition(" … ")[0]) and notes.endswith(shown.partition(" … ")[2])
    # A reference where the text is cut goes whole or not at all (patient:12345 never patient:1).
    cut = "x" * (TEXT_HEAD - 3) + " patient:12345 " + "y " * 400 + "for patient:7"
    assert "patient:1 " not in shown_text(cut) and shown_text(cut).endswith("for patient:7")
    assert _plain(notes) == shown
