"""Practice records: every change comes with its record event and history entry; bad values store nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.store import Database, InvalidRecord, NotFound, RecordRef
from app.store.history import history_of
from app.store.records import add_record, describe, get_record, list_records, record_to_json, update_record
from app.store.schema import history, record_events


def add(db: Database, record_type: str, actor: str = "ann", **values: Any) -> RecordRef:
    with db.write() as conn:
        return add_record(conn, record_type, values, actor)


def events(db: Database, ref: RecordRef) -> list[tuple[str, str]]:
    with db.read() as conn:
        rows = conn.execute(select(record_events.c.event, record_events.c.actor)
                            .where(record_events.c.record_type == ref.type, record_events.c.record_id == ref.id)
                            .order_by(record_events.c.id)).all()
    return [(r.event, r.actor) for r in rows]


def counts(db: Database) -> tuple[int, ...]:
    from app.store.records import count_records

    with db.read() as conn:
        return (*(count_records(conn, t) for t in ("patient", "appointment", "task", "recall")),
                conn.execute(select(func.count()).select_from(record_events)).scalar_one(),
                conn.execute(select(func.count()).select_from(history)).scalar_one())


@pytest.fixture
def ann(db: Database) -> RecordRef:
    return add(db, "patient", first_name="Ann", last_name="Smith", email="ann@example.org", date_of_birth="1980-02-29")


def test_adding_a_patient_writes_created_event_and_history(db: Database, ann: RecordRef) -> None:
    assert ann == RecordRef("patient", 1)
    assert events(db, ann) == [("created", "ann")]
    with db.read() as conn:
        record = get_record(conn, ann)
        entries = history_of(conn, "patient:1")
    assert record["date_of_birth"] == date(1980, 2, 29)
    assert record["created_at"].tzinfo is not None
    assert [(h.action, h.actor) for h in entries] == [("record.add", "ann")]
    assert entries[0].detail["first_name"] == "Ann"


def test_a_booked_appointment_emits_created_and_booked(db: Database, ann: RecordRef) -> None:
    ref = add(db, "appointment", actor="reception", patient_id=ann.id, starts_at="2026-12-01 09:30")
    assert events(db, ref) == [("created", "reception"), ("booked", "reception")]
    with db.read() as conn:
        assert get_record(conn, ref)["status"] == "booked"


def test_status_change_emits_updated_and_the_status_event(db: Database, ann: RecordRef) -> None:
    ref = add(db, "appointment", patient_id=ann.id, starts_at="2026-12-01T09:30:00+00:00")
    with db.write() as conn:
        changes = update_record(conn, ref, {"status": "cancelled"}, "bob")
    assert changes == {"status": ["booked", "cancelled"]}
    assert events(db, ref)[-2:] == [("updated", "bob"), ("cancelled", "bob")]
    with db.read() as conn:
        entries = history_of(conn, str(ref))
    assert (entries[0].action, entries[0].actor, entries[0].detail) == (
        "record.update", "bob", {"status": ["booked", "cancelled"]})


def test_recall_created_due_emits_due(db: Database, ann: RecordRef) -> None:
    ref = add(db, "recall", patient_id=ann.id, recall_type="Check-up", due_date="2026-12-01")
    assert events(db, ref) == [("created", "ann"), ("due", "ann")]


def test_task_status_change_is_only_an_update(db: Database) -> None:
    ref = add(db, "task", title="Order X-ray films")
    with db.write() as conn:
        update_record(conn, ref, {"status": "done"}, "bob")
    assert events(db, ref) == [("created", "ann"), ("updated", "bob")]


def test_an_update_that_changes_nothing_writes_nothing(db: Database, ann: RecordRef) -> None:
    before = counts(db)
    with db.write() as conn:
        assert update_record(conn, ann, {"email": "ann@example.org"}, "bob") == {}
    assert counts(db) == before


def test_patient_update_moves_updated_at(db: Database, ann: RecordRef) -> None:
    with db.read() as conn:
        before = get_record(conn, ann)["updated_at"]
    with db.write() as conn:
        update_record(conn, ann, {"mobile": "+44 7700 900123"}, "bob")
    with db.read() as conn:
        after = get_record(conn, ann)
    assert after["mobile"] == "+447700900123" and after["updated_at"] >= before


def test_datetime_without_offset_is_local_time_and_json_is_utc(db: Database, ann: RecordRef) -> None:
    ref = add(db, "appointment", patient_id=ann.id, starts_at="2026-12-01 09:30")
    expected = datetime(2026, 12, 1, 9, 30).astimezone().astimezone(UTC)
    with db.read() as conn:
        stored = get_record(conn, ref)
    assert stored["starts_at"] == expected
    assert record_to_json(stored)["starts_at"] == expected.isoformat()
    assert record_to_json(stored)["starts_at"].endswith("+00:00")


def test_list_and_search_records(db: Database, ann: RecordRef) -> None:
    add(db, "patient", first_name="Bilal", last_name="Hussain")
    with db.read() as conn:
        assert [r["first_name"] for r in list_records(conn, "patient")] == ["Ann", "Bilal"]
        assert [r["first_name"] for r in list_records(conn, "patient", search="huss")] == ["Bilal"]


def test_describe_names_the_patient(db: Database, ann: RecordRef) -> None:
    task = add(db, "task", title="Call back", patient_id=ann.id)
    with db.read() as conn:
        assert describe(conn, ann) == "Patient Ann Smith (patient:1)"
        assert describe(conn, task) == "Task 'Call back' for Ann Smith (task:1)"


@pytest.mark.parametrize("record_type, values, message", [
    ("patient", {"first_name": "A", "last_name": "B", "shoe_size": "9"},
     "a patient has no field 'shoe_size' (fields: first_name, last_name, date_of_birth, email, mobile, notes, "
     "email_opt_out, sms_opt_out, marketing_consent)"),
    ("patient", {"first_name": "A", "last_name": "B", "date_of_birth": "1990-13-01"},
     "patient field 'date_of_birth': '1990-13-01' is not a date (use YYYY-MM-DD)"),
    ("appointment", {"patient_id": "1", "starts_at": "tomorrow at 9"},
     "appointment field 'starts_at': 'tomorrow at 9' is not a date-time (use YYYY-MM-DD HH:MM, local time, or ISO 8601)"),
    ("appointment", {"patient_id": "1", "starts_at": "2026-12-01 09:00", "status": "maybe"},
     "appointment field 'status': 'maybe' is not one of booked, cancelled, completed, no_show"),
    ("patient", {"first_name": "A"}, "a patient needs last_name"),
    ("recall", {"patient_id": "1"}, "a recall needs recall_type, due_date"),
    ("patient", {"first_name": "", "last_name": "B"}, "patient field 'first_name' cannot be empty"),
    ("appointment", {"patient_id": "99", "starts_at": "2026-12-01 09:00"},
     "appointment field 'patient_id': there is no patient:99"),
    ("appointment", {"patient_id": "one", "starts_at": "2026-12-01 09:00"},
     "appointment field 'patient_id': 'one' is not a whole number"),
    ("patient", {"first_name": "A", "last_name": "B", "created_at": "2020-01-01 00:00"},
     "patient field 'created_at' cannot be set"),
    ("invoice", {"amount": "10"}, "unknown record type 'invoice' (use patient, appointment, task, recall)"),
    ("patient", {"first_name": "A" * 201, "last_name": "B"}, "patient field 'first_name' is longer than 200 characters"),
])
def test_refused_add_stores_nothing(db: Database, ann: RecordRef, record_type: str, values: dict[str, Any],
                                    message: str) -> None:
    before = counts(db)
    with pytest.raises(InvalidRecord) as caught, db.write() as conn:
        add_record(conn, record_type, values, "ann")
    assert str(caught.value) == message
    assert counts(db) == before


@pytest.mark.parametrize("values, message", [
    ({"status": "maybe"}, "appointment field 'status': 'maybe' is not one of booked, cancelled, completed, no_show"),
    ({"starts_at": "31/12/2026"}, "appointment field 'starts_at': '31/12/2026' is not a date-time "
                                  "(use YYYY-MM-DD HH:MM, local time, or ISO 8601)"),
    ({"colour": "red"}, "an appointment has no field 'colour' (fields: patient_id, starts_at, ends_at, practitioner, "
                        "reason, status)"),
    ({"patient_id": "42"}, "appointment field 'patient_id': there is no patient:42"),
    ({"starts_at": ""}, "appointment field 'starts_at' cannot be empty"),
    ({"reason": "Check-up", "status": "maybe"},
     "appointment field 'status': 'maybe' is not one of booked, cancelled, completed, no_show"),
])
def test_refused_update_changes_nothing(db: Database, ann: RecordRef, values: dict[str, Any], message: str) -> None:
    ref = add(db, "appointment", patient_id=ann.id, starts_at="2026-12-01 09:30")
    with db.read() as conn:
        original = get_record(conn, ref)
    before = counts(db)
    with pytest.raises(InvalidRecord) as caught, db.write() as conn:
        update_record(conn, ref, values, "bob")
    assert str(caught.value) == message
    assert counts(db) == before
    with db.read() as conn:
        assert get_record(conn, ref) == original


def test_update_of_a_missing_record_says_so_first(db: Database, ann: RecordRef) -> None:
    """Even with a wrong field, the missing record is the thing to fix."""
    with pytest.raises(NotFound, match=r"^there is no patient:9$"), db.write() as conn:
        update_record(conn, RecordRef("patient", 9), {"shoe_size": "9"}, "bob")


def test_show_of_a_missing_record_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound, match=r"^there is no recall:5$"), db.read() as conn:
        get_record(conn, RecordRef("recall", 5))


@pytest.mark.parametrize("text", ["patient", "patient:", "patient:x", "invoice:3", "3", "patient:-1"])
def test_bad_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidRecord, match=rf"^'{text}' is not a record reference \(use TYPE:ID"):
        RecordRef.parse(text)


def test_references_parse() -> None:
    assert RecordRef.parse(" appointment:3 ") == RecordRef("appointment", 3)
    assert str(RecordRef("patient", 12)) == "patient:12"


def test_due_dates_keep_their_calendar_day(db: Database, ann: RecordRef) -> None:
    due = date.today() + timedelta(days=30)
    ref = add(db, "recall", patient_id=ann.id, recall_type="Hygiene", due_date=due.isoformat())
    with db.read() as conn:
        assert get_record(conn, ref)["due_date"] == due
        assert record_to_json(get_record(conn, ref))["due_date"] == due.isoformat()


def test_moving_an_appointment_emits_updated_and_rescheduled(db: Database, ann: RecordRef) -> None:
    visit = add(db, "appointment", patient_id=ann.id, starts_at="2026-12-01 09:30")
    with db.write() as conn:
        update_record(conn, visit, {"starts_at": "2026-12-02 10:00"}, "reception")
        update_record(conn, visit, {"practitioner": "Dr Okafor"}, "reception")
        update_record(conn, visit, {"starts_at": "2026-12-03 10:00", "status": "cancelled"}, "reception")
    assert events(db, visit)[2:] == [("updated", "reception"), ("rescheduled", "reception"),
                                     ("updated", "reception"),
                                     ("updated", "reception"), ("cancelled", "reception"), ("rescheduled", "reception")]
