"""app.api.records on real SQLite and PostgreSQL: a record in words, search, add and update."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.api import InvalidRecord, NotFound, RecordRef, history, records


def practice(db):  # type: ignore[no-untyped-def]
    ann = records.add_record(db, "patient", {"first_name": "Ann", "last_name": "Smith", "email": "ann@x.org"}, "lee")
    bob = records.add_record(db, "patient", {"first_name": "Bob", "last_name": "Jones"}, "lee")
    visit = records.add_record(db, "appointment", {"patient_id": ann.id, "starts_at": "2026-03-02T09:30:00+00:00",
                                                   "reason": "Check-up"}, "lee")
    task = records.add_record(db, "task", {"title": "Call back", "patient_id": bob.id}, "lee")
    lone = records.add_record(db, "task", {"title": "Order gloves"}, "lee")
    recall = records.add_record(db, "recall", {"patient_id": ann.id, "recall_type": "Hygiene",
                                               "due_date": "2026-06-01"}, "lee")
    return ann, bob, visit, task, lone, recall


def test_every_kind_of_record_in_words(db) -> None:  # type: ignore[no-untyped-def]
    ann, _bob, visit, task, lone, recall = practice(db)
    when = datetime(2026, 3, 2, 9, 30, tzinfo=UTC).astimezone().strftime("%Y-%m-%d %H:%M")
    assert records.describe_record(db, ann) == f"Patient Ann Smith ({ann})"
    assert records.describe_record(db, visit) == f"Appointment of Ann Smith on {when} ({visit})"
    assert records.describe_record(db, task) == f"Task 'Call back' for Bob Jones ({task})"
    assert records.describe_record(db, lone) == f"Task 'Order gloves' ({lone})"
    assert records.describe_record(db, recall) == f"Recall Hygiene of Ann Smith ({recall})"
    assert records.describe_record(db, RecordRef("patient", 4242)) == "Patient patient:4242 (deleted)"
    # The batch form reads the same words with one query per type.
    with db.read() as conn:
        assert records.words_for(conn, [visit, ann, task]) == {
            visit: records.describe_record(db, visit), ann: f"Patient Ann Smith ({ann})",
            task: f"Task 'Call back' for Bob Jones ({task})"}
    assert records.get_record(db, visit).words == records.describe_record(db, visit)


def test_search_matches_text_fields_and_optionally_the_patients_name(db) -> None:  # type: ignore[no-untyped-def]
    ann, _bob, visit, task, lone, _recall = practice(db)
    assert [r.ref for r in records.list_records(db, "patient", search="SMITH")] == [ann]
    assert [r.ref for r in records.list_records(db, "patient", search="ann@x")] == [ann]
    assert records.list_records(db, "appointment", search="ann smith") == []
    found = records.list_records(db, "appointment", search="ann smith", match_patient_names=True)
    assert [r.ref for r in found] == [visit] and found[0].patient_name == "Ann Smith"
    tasks = records.list_records(db, "task")
    assert [(r.ref, r.patient_name) for r in tasks] == [(task, "Bob Jones"), (lone, "")]
    assert records.list_records(db, "task", limit=1)[0].ref == task
    assert records.get_record(db, ann).to_json()["created_at"].endswith("+00:00")


def test_add_and_update_refuse_bad_values_and_record_who_changed_what(db) -> None:  # type: ignore[no-untyped-def]
    ann = records.add_record(db, "patient", {"first_name": "Ann", "last_name": "Smith"}, "lee")
    assert records.update_record(db, ann, {"mobile": "+441234567890"}, "maria") == {"mobile": [None, "+441234567890"]}
    assert records.update_record(db, ann, {"mobile": "+441234567890"}, "maria") == {}  # nothing changed
    with pytest.raises(InvalidRecord, match="patient field 'date_of_birth': 'soon' is not a date"):
        records.update_record(db, ann, {"date_of_birth": "soon"}, "maria")
    with pytest.raises(NotFound, match="there is no patient:999"):
        records.update_record(db, RecordRef("patient", 999), {"mobile": "1"}, "maria")
    with pytest.raises(InvalidRecord, match="'mobile' is not field=value"):
        records.parse_assignments(["mobile"])
    assert [(h.actor, h.action) for h in history.list_history(db, subject=str(ann))] == [
        ("maria", "record.update"), ("lee", "record.add")]
    assert [h.subject for h in history.list_history(db, actor="maria")] == [str(ann)]
