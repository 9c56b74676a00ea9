# ruff: noqa: F401, F811 - the fixtures of test_views_editor_commands are imported, then requested by name
"""The Records panel in the Monitor workspace (issue 11, trial findings 12 and 14): its table fits
1280x800 and 1366x768 without scrolling sideways (a long value cut short, its full text in the
tooltip), remembers the widths the person sets, and follows records added elsewhere without F5
(pytest-qt, offscreen, real SQLite file, a second real connection)."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from test_views_editor_commands import SIZES, open_window

from app.api import RecordRef
from app.api import records as records_api
from app.store import open_database
from app.store.demo import load_demo
from app.views.main_window import MONITOR

WAIT = 10_000


def demo(url: str) -> None:
    db = open_database(url)
    try:
        load_demo(db, "Ann Tester")
    finally:
        db.dispose()


def monitor_records(open_window: Any, qtbot: Any, size: tuple[int, int]) -> Any:
    window = open_window()
    window.resize(*size)
    window.set_workspace(MONITOR)
    window.show_records()
    records = window.records
    qtbot.waitUntil(lambda: records.table.isVisible() and records.model.rowCount() > 0, timeout=WAIT)
    qtbot.wait(50)  # the columns are fitted once the panel has its size
    return window


def column(records: Any, name: str) -> int:
    return next(i for i, spec in enumerate(records.model.fields) if spec.name == name)


def in_view(records: Any, name: str) -> bool:
    """Shown, at least 48 px wide, and inside the table's visible width."""
    header = records.table.horizontalHeader()
    index = column(records, name)
    left = header.sectionViewportPosition(index)
    return (not header.isSectionHidden(index) and header.sectionSize(index) >= 48
            and left >= 0 and left + header.sectionSize(index) <= records.table.viewport().width())


@pytest.mark.parametrize("size", SIZES)
def test_the_records_table_fits_the_monitor_panel_without_scrolling_sideways(
        open_window: Any, qtbot: Any, sqlite_url: str, size: tuple[int, int]) -> None:
    demo(sqlite_url)
    window = monitor_records(open_window, qtbot, size)
    records = window.records
    table = records.table
    assert window.records_dock.width() < 500  # the docked panel at its designed width
    assert table.horizontalScrollBar().maximum() == 0
    for name in ("name", "date_of_birth", "mobile", "email"):
        assert in_view(records, name), name
    # A long email cut short in the cell says all of itself in its tooltip.
    row = max(range(records.model.rowCount()), key=lambda r: len(str(records.model.rows[r].get("email") or "")))
    email = records.model.rows[row].get("email")
    cell = records.model.index(row, column(records, "email"))
    assert records.model.data(cell, Qt.ItemDataRole.ToolTipRole) == email
    assert records.model.data(records.model.index(row, column(records, "name"))) == records.model.rows[row].patient_name
    # The other record types fit too.
    for record_type in ("appointment", "task", "recall"):
        records.set_record_type(record_type)
        qtbot.waitUntil(lambda t=record_type: not records.model.loading and records.model.record_type == t
                        and records.model.rowCount() > 0, timeout=WAIT)
        qtbot.wait(20)
        assert table.horizontalScrollBar().maximum() == 0, record_type
        assert in_view(records, "patient_id") and in_view(records, "status"), record_type


def test_a_column_the_person_widens_keeps_its_width_and_the_table_still_fits(
        open_window: Any, qtbot: Any, sqlite_url: str) -> None:
    demo(sqlite_url)
    window = monitor_records(open_window, qtbot, (1366, 768))
    records = window.records
    header = records.table.horizontalHeader()
    born = column(records, "date_of_birth")
    header.resizeSection(born, 130)  # as a drag of its edge does
    qtbot.wait(50)
    assert header.sectionSize(born) == 130
    assert records.table.horizontalScrollBar().maximum() == 0 and in_view(records, "email")
    # Hidden from the header's menu, shown again: remembered as well.
    records.show_column("mobile", False)
    assert header.isSectionHidden(column(records, "mobile"))
    window.close()
    again = monitor_records(open_window, qtbot, (1366, 768))
    header = again.records.table.horizontalHeader()
    assert header.sectionSize(column(again.records, "date_of_birth")) == 130
    assert header.isSectionHidden(column(again.records, "mobile"))
    again.records.show_column("mobile", True)
    assert in_view(again.records, "mobile") and again.records.table.horizontalScrollBar().maximum() == 0


def test_records_added_on_another_workstation_appear_without_refresh(
        open_window: Any, qtbot: Any, sqlite_url: str) -> None:
    window = open_window()
    window.set_workspace(MONITOR)
    window.show_records()
    records = window.records
    qtbot.waitUntil(lambda: records.empty.isVisible(), timeout=WAIT)  # "No patients yet."
    other = open_database(sqlite_url)  # another workstation's connection
    try:
        ref = records_api.add_record(other, "patient", {"first_name": "Nia", "last_name": "Evans"}, "Bo Other")
        qtbot.waitUntil(lambda: records.model.row_of(ref.id) is not None, timeout=WAIT)
        assert records.table.isVisible() and not records.empty.isVisible()
        # Selected and changed elsewhere: the row follows, still selected.
        assert records.select(RecordRef("patient", ref.id))
        records_api.update_record(other, ref, {"last_name": "Evans-Price"}, "Bo Other")
        row = records.model.row_of(ref.id)
        qtbot.waitUntil(lambda: records.model.rows[records.model.row_of(ref.id) or 0].get("last_name")
                        == "Evans-Price", timeout=WAIT)
        assert records.current_ref() == RecordRef("patient", ref.id) and row is not None
        # While the panel is hidden (Build), a change is read when it is shown again.
        window.set_workspace("build")
        second = records_api.add_record(other, "patient", {"first_name": "Owen", "last_name": "Price"}, "Bo Other")
        window.show_records()
        qtbot.waitUntil(lambda: records.model.row_of(second.id) is not None, timeout=WAIT)
    finally:
        other.dispose()
