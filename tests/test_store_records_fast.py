"""Record changes written in one statement (PostgreSQL) say exactly what the plain path says:
the same returned changes, record events (in order) and history entries, on both databases;
appended lines are never lost to a concurrent writer."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select

from app.store import Database, InvalidRecord, NotFound, RecordRef
from app.store.history import history_of
from app.store.records import add_record, append_line, get_record, update_record
from app.store.schema import record_events


def add(db: Database, record_type: str, **values: Any) -> RecordRef:
    with db.write() as conn:
        return add_record(conn, record_type, values, "ann")


def change(db: Database, ref: RecordRef, actor: str = "bob", **values: Any) -> dict[str, list[Any]]:
    with db.write() as conn:
        return update_record(conn, ref, values, actor)


def written_events(db: Database, ref: RecordRef) -> list[tuple[str, str, Any]]:
    with db.read() as conn:
        rows = conn.execute(select(record_events.c.event, record_events.c.actor, record_events.c.changes)
                            .where(record_events.c.record_type == ref.type, record_events.c.record_id == ref.id)
                            .order_by(record_events.c.id)).all()
    return [(r.event, r.actor, r.changes) for r in rows]


def history_details(db: Database, ref: RecordRef) -> list[tuple[str, str, Any]]:
    with db.read() as conn:
        return [(e.action, e.actor, e.detail) for e in reversed(history_of(conn, str(ref)))]


@pytest.fixture
def ann(db: Database) -> RecordRef:
    return add(db, "patient", first_name="Ann", last_name="Smith")


def test_a_text_change_records_old_and_new_in_event_and_history(db: Database, ann: RecordRef) -> None:
    assert change(db, ann, mobile="07700 900001") == {"mobile": [None, "+447700900001"]}
    assert change(db, ann, mobile="07700 900002") == {"mobile": ["+447700900001", "+447700900002"]}
    assert change(db, ann, mobile="") == {"mobile": ["+447700900002", None]}
    assert written_events(db, ann)[1:] == [
        ("updated", "bob", {"mobile": [None, "+447700900001"]}),
        ("updated", "bob", {"mobile": ["+447700900001", "+447700900002"]}),
        ("updated", "bob", {"mobile": ["+447700900002", None]}),
    ]
    assert history_details(db, ann)[1:] == [
        ("record.update", "bob", {"mobile": [None, "+447700900001"]}),
        ("record.update", "bob", {"mobile": ["+447700900001", "+447700900002"]}),
        ("record.update", "bob", {"mobile": ["+447700900002", None]}),
    ]
    with db.read() as conn:
        assert get_record(conn, ann)["mobile"] is None


def test_a_reference_change_keeps_numbers_and_checks_the_new_patient(db: Database, ann: RecordRef) -> None:
    bea = add(db, "patient", first_name="Bea", last_name="Jones")
    visit = add(db, "appointment", patient_id=ann.id, starts_at="2026-12-01 09:30")
    assert change(db, visit, patient_id=bea.id) == {"patient_id": [ann.id, bea.id]}
    with pytest.raises(InvalidRecord, match=r"^appointment field 'patient_id': there is no patient:99$"):
        change(db, visit, patient_id=99)
    assert written_events(db, visit)[-1] == ("updated", "bob", {"patient_id": [ann.id, bea.id]})
    with db.read() as conn:
        assert get_record(conn, visit)["patient_id"] == bea.id


def test_a_status_change_writes_updated_then_the_status_event_with_the_same_changes(
        db: Database, ann: RecordRef) -> None:
    visit = add(db, "appointment", patient_id=ann.id, starts_at="2026-12-01 09:30")
    assert change(db, visit, status="no_show") == {"status": ["booked", "no_show"]}
    assert [e for e in written_events(db, visit)[2:]] == [
        ("updated", "bob", {"status": ["booked", "no_show"]}),
        ("no_show", "bob", {"status": ["booked", "no_show"]}),
    ]


def test_setting_the_same_value_again_writes_nothing(db: Database, ann: RecordRef) -> None:
    change(db, ann, mobile="07700 900001")
    with db.read() as conn:
        before = get_record(conn, ann)["updated_at"]
    assert change(db, ann, mobile="07700 900001") == {}
    assert len(written_events(db, ann)) == 2
    assert len(history_details(db, ann)) == 2
    with db.read() as conn:
        assert get_record(conn, ann)["updated_at"] == before


def test_a_missing_record_is_said_before_a_bad_value(db: Database) -> None:
    with pytest.raises(NotFound, match=r"^there is no patient:7$"):
        change(db, RecordRef("patient", 7), date_of_birth="soon")
    with pytest.raises(NotFound, match=r"^there is no patient:7$"):
        change(db, RecordRef("patient", 7), mobile="07700 900001")


def test_a_task_for_a_patient_writes_its_event_and_history_under_its_own_id(db: Database, ann: RecordRef) -> None:
    add(db, "task", title="first")
    with db.write() as conn:
        task = add_record(conn, "task", {"title": "Call Ann", "patient_id": ann.id}, "runtime", created_by_run=5)
    assert task == RecordRef("task", 2)
    shown = {"title": "Call Ann", "patient_id": ann.id, "status": "open", "created_by_run": 5}
    assert written_events(db, task) == [("created", "runtime", shown)]
    assert history_details(db, task) == [("record.add", "runtime", shown)]
    with db.read() as conn:
        assert get_record(conn, task)["created_by_run"] == 5


def test_a_task_for_a_missing_patient_is_refused_and_stores_nothing(db: Database) -> None:
    with pytest.raises(InvalidRecord, match=r"^task field 'patient_id': there is no patient:3$"):
        add(db, "task", title="Call", patient_id=3)
    assert written_events(db, RecordRef("task", 1)) == []
    assert history_details(db, RecordRef("task", 1)) == []


def test_concurrent_changes_of_one_field_each_record_the_value_they_replaced(db: Database, ann: RecordRef) -> None:
    """The second writer waits for the first and reports the first's value as the old one."""
    if db.is_sqlite:
        pytest.skip("SQLite has one writer at a time: there is nothing concurrent to check")
    first_wrote = threading.Event()
    results: list[dict[str, list[Any]]] = []

    def second() -> None:
        first_wrote.wait(10)
        results.append(change(db, ann, mobile="07700 900222"))

    thread = threading.Thread(target=second)
    thread.start()
    with db.write() as conn:
        results.append(update_record(conn, ann, {"mobile": "07700 900111"}, "bob"))
        first_wrote.set()
        thread.join(0.3)  # the second writer is now waiting for this transaction's row lock
    thread.join(10)
    assert results == [{"mobile": [None, "+447700900111"]}, {"mobile": ["+447700900111", "+447700900222"]}]


def test_appended_lines_follow_the_text_after_a_newline(db: Database, ann: RecordRef) -> None:
    with db.write() as conn:
        first = append_line(conn, ann, "notes", "called", "runtime")
        second = append_line(conn, ann, "notes", "no answer", "runtime")
    assert first == {"notes": [None, "called"]}
    assert second == {"notes": ["called", "called\nno answer"]}
    assert written_events(db, ann)[1:] == [("updated", "runtime", first), ("updated", "runtime", second)]
    assert history_details(db, ann)[1:] == [("record.update", "runtime", first), ("record.update", "runtime", second)]
    with db.read() as conn:
        assert get_record(conn, ann)["notes"] == "called\nno answer"


def test_appending_to_an_emptied_field_starts_it_again(db: Database, ann: RecordRef) -> None:
    change(db, ann, notes="old")
    change(db, ann, notes="")
    with db.write() as conn:
        assert append_line(conn, ann, "notes", "new", "runtime") == {"notes": [None, "new"]}


def test_appending_to_a_missing_record_or_a_non_text_field_is_refused(db: Database, ann: RecordRef) -> None:
    with db.write() as conn, pytest.raises(NotFound, match=r"^there is no patient:9$"):
        append_line(conn, RecordRef("patient", 9), "notes", "hello", "runtime")
    with db.write() as conn, pytest.raises(InvalidRecord, match=r"^a patient has no text field 'date_of_birth'$"):
        append_line(conn, ann, "date_of_birth", "hello", "runtime")
    assert len(written_events(db, ann)) == 1


def test_concurrent_appends_keep_both_lines(db: Database, ann: RecordRef) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has one writer at a time: there is nothing concurrent to check")
    first_wrote = threading.Event()

    def second() -> None:
        first_wrote.wait(10)
        with db.write() as conn:
            append_line(conn, ann, "notes", "second", "runtime")

    thread = threading.Thread(target=second)
    thread.start()
    with db.write() as conn:
        append_line(conn, ann, "notes", "first", "runtime")
        first_wrote.set()
        thread.join(0.3)  # the second writer is now waiting for this transaction's row lock
    thread.join(10)
    with db.read() as conn:
        assert get_record(conn, ann)["notes"] == "first\nsecond"
