"""Record values are checked before anything is stored (DESIGN section 4), by every writer:
the store itself, `clinicflow record add/update`, a workflow's Update record step, demo data."""

from __future__ import annotations

from typing import Any

import pytest
from runtime_workflows import add_patient, chain, detail, make_workflow, node
from sqlalchemy import func, select

from app.runtime import Runtime
from app.runtime.control import start_run
from app.store import Database, InvalidRecord, RecordRef
from app.store.demo import load_demo
from app.store.records import add_record, get_record, list_records, update_record
from app.store.schema import history, record_events
from app.store.settings import set_setting
from app.store.values import ValueProblem, parse_bool


def add(db: Database, record_type: str, **values: Any) -> RecordRef:
    with db.write() as conn:
        return add_record(conn, record_type, values, "ann")


def written(db: Database) -> tuple[int, int]:
    with db.read() as conn:
        return (conn.execute(select(func.count()).select_from(record_events)).scalar_one(),
                conn.execute(select(func.count()).select_from(history)).scalar_one())


@pytest.mark.parametrize(("record_type", "values", "message"), [
    ("patient", {"email": "not-an-email"}, "patient field 'email': 'not-an-email' is not an email address"),
    ("patient", {"email": "ann@example"}, "patient field 'email': 'ann@example' is not an email address"),
    ("patient", {"email": "ann smith@example.org"},
     "patient field 'email': 'ann smith@example.org' is not an email address"),
    ("patient", {"mobile": "call me"},
     "patient field 'mobile': 'call me' is not a phone number (national numbers are read as GB)"),
    ("patient", {"mobile": "07700 1"},
     "patient field 'mobile': '07700 1' is not a phone number (national numbers are read as GB)"),
    ("patient", {"mobile": "123"},
     "patient field 'mobile': '123' is not a phone number (national numbers are read as GB)"),
    ("patient", {"date_of_birth": "1850-03-01"},
     "patient field 'date_of_birth': '1850-03-01' is not between 1900-01-01 and 2100-12-31"),
    ("patient", {"notes": "a\x00b"}, "patient field 'notes' contains a NUL character"),
])
def test_a_bad_patient_value_is_refused_naming_type_and_field_and_stores_nothing(
        db: Database, record_type: str, values: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRecord) as refused:
        add(db, record_type, first_name="Ann", last_name="Smith", **values)
    assert str(refused.value) == message
    with db.read() as conn:
        assert list_records(conn, "patient") == []
    assert written(db) == (0, 0)


@pytest.mark.parametrize(("field", "value"), [
    ("starts_at", "0001-01-01T12:00:00+00:00"),
    ("starts_at", "0001-01-01 12:00"),  # local time: converting it would overflow
    ("starts_at", "9999-12-31T23:59:59"),
    ("ends_at", "2101-01-01 00:00"),
])
def test_appointment_times_outside_1900_to_2100_are_refused(db: Database, field: str, value: str) -> None:
    ann = add(db, "patient", first_name="Ann", last_name="Smith")
    values = {"patient_id": ann.id, "starts_at": "2026-12-01 09:30", field: value}
    with pytest.raises(InvalidRecord) as refused:
        add(db, "appointment", **values)
    assert str(refused.value) == f"appointment field '{field}': '{value}' is not between 1900-01-01 and 2100-12-31"
    with db.read() as conn:
        assert list_records(conn, "appointment") == []


def test_a_recall_due_in_year_9999_is_refused_and_the_bounds_themselves_are_accepted(db: Database) -> None:
    ann = add(db, "patient", first_name="Ann", last_name="Smith", date_of_birth="1900-01-01")
    with pytest.raises(InvalidRecord, match=r"^recall field 'due_date': '9999-12-31' is not between "):
        add(db, "recall", patient_id=ann.id, recall_type="Check-up", due_date="9999-12-31")
    recall = add(db, "recall", patient_id=ann.id, recall_type="Check-up", due_date="2100-12-31")
    with pytest.raises(InvalidRecord, match=r"^recall field 'due_date': '0001-01-01' is not between "), \
            db.write() as conn:
        update_record(conn, recall, {"due_date": "0001-01-01"}, "ann")
    with db.read() as conn:
        assert str(get_record(conn, recall)["due_date"]) == "2100-12-31"


def test_mobile_numbers_are_stored_in_e164_read_in_the_practice_country(db: Database) -> None:
    ann = add(db, "patient", first_name="Ann", last_name="Smith", mobile="07700 900123")
    with db.read() as conn:
        assert get_record(conn, ann)["mobile"] == "+447700900123"
    with db.write() as conn:
        assert update_record(conn, ann, {"mobile": "+44 (0)7700 900-124"}, "ann") == {
            "mobile": ["+447700900123", "+447700900124"]}
        set_setting(conn, "country", "IE")
    with db.write() as conn:
        update_record(conn, ann, {"mobile": "085 123 4567"}, "ann")
    with db.read() as conn:
        assert get_record(conn, ann)["mobile"] == "+353851234567"
    with pytest.raises(InvalidRecord, match=r"read as IE\)$"), db.write() as conn:
        update_record(conn, ann, {"mobile": "call me"}, "ann")
    with db.read() as conn:
        assert get_record(conn, ann)["mobile"] == "+353851234567"


def test_an_update_with_one_bad_value_changes_none_of_the_values(db: Database) -> None:
    ann = add(db, "patient", first_name="Ann", last_name="Smith", email="ann@example.org")
    before = written(db)
    with pytest.raises(InvalidRecord, match=r"^patient field 'email': "), db.write() as conn:
        update_record(conn, ann, {"last_name": "Jones", "email": "ann at example"}, "ann")
    with db.read() as conn:
        record = get_record(conn, ann)
    assert (record["last_name"], record["email"]) == ("Smith", "ann@example.org")
    assert written(db) == before


def test_booleans_are_read_strictly() -> None:
    for text, value in [("true", True), ("False", False), (" yes ", True), ("NO", False), ("1", True),
                        ("0", False), (True, True), (0, False)]:
        assert parse_bool(text) is value
    for text in ("maybe", "", "2", "y", "on", "truthy", 2):
        with pytest.raises(ValueProblem, match="is not true or false"):
            parse_bool(text)


@pytest.mark.parametrize("search", ["%", "_", "100%", "a_b"])
def test_search_matches_percent_and_underscore_literally(db: Database, search: str) -> None:
    plain = add(db, "patient", first_name="Ann", last_name="Smith")
    special = add(db, "patient", first_name="Bea", last_name="Jones", notes="fee 100% paid; ref a_b")
    add(db, "patient", first_name="Cal", last_name="Abxb")
    with db.read() as conn:
        found = [r["id"] for r in list_records(conn, "patient", search=search)]
    assert found == [special.id]
    assert plain.id not in found


def test_search_still_ignores_case(db: Database) -> None:
    ann = add(db, "patient", first_name="Ann", last_name="Smith")
    with db.read() as conn:
        assert [r["id"] for r in list_records(conn, "patient", search="SMI")] == [ann.id]


def test_a_workflow_setting_a_bad_value_fails_its_step_with_the_reason(db: Database) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("mark", "action.update_record", record="patient", field="email", value="{{ patient.first_name }}"),
    ], chain("start", "mark"))
    patient = add_patient(db, email="ann@example.org")
    run_id = start_run(db, workflow_id, record=patient, actor="maria")
    Runtime(db, "rt").run_once()
    run = detail(db, run_id)
    assert run["status"] == "failed"
    step = run["steps"][-1]
    assert (step["node_id"], step["status"]) == ("mark", "failed")
    assert step["error"]["message"] == (
        f"Cannot update {patient}: patient field 'email': 'Ann' is not an email address")
    with db.read() as conn:
        assert get_record(conn, patient)["email"] == "ann@example.org"


def test_a_workflow_setting_a_mobile_number_stores_it_normalised(db: Database) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("mark", "action.update_record", record="patient", field="mobile", value="07700 900{{ 100 + 23 }}"),
    ], chain("start", "mark"))
    patient = add_patient(db)
    run_id = start_run(db, workflow_id, record=patient, actor="maria")
    Runtime(db, "rt").run_once()
    assert detail(db, run_id)["status"] == "completed"
    with db.read() as conn:
        assert get_record(conn, patient)["mobile"] == "+447700900123"


def test_demo_data_passes_the_checks_and_stores_mobiles_in_e164(db: Database) -> None:
    load_demo(db, "tester")
    with db.read() as conn:
        patients = list_records(conn, "patient")
    mobiles = [p["mobile"] for p in patients if p["mobile"]]
    assert mobiles and all(m.startswith("+447700900") and len(m) == 13 for m in mobiles)
