"""Migration 0003 flags stored values that fail the record checks and keeps them as they were."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import MetaData, Table, insert

from app.store import open_database
from app.store.database import create_database, upgrade_schema
from app.store.problems import list_record_problems
from app.store.records import RecordRef, get_record, update_record

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_upgrading_keeps_bad_values_and_lists_them_as_problems(db_url: str) -> None:
    old = create_database(db_url)
    upgrade_schema(old, "0002")
    with old.write() as conn:
        # The tables as they were at 0002 (today's have columns later migrations added).
        shape = MetaData()
        patients, appointments, recalls = (Table(name, shape, autoload_with=conn)
                                           for name in ("patients", "appointments", "recalls"))
        conn.execute(insert(patients), [
            {"id": 1, "first_name": "Ann", "last_name": "Smith", "email": "not-an-email", "mobile": "call me",
             "date_of_birth": None, "created_at": NOW, "updated_at": NOW},
            {"id": 2, "first_name": "Bea", "last_name": "Jones", "email": "bea@example.org",
             "mobile": "+447700900123", "date_of_birth": date(1980, 2, 29), "created_at": NOW, "updated_at": NOW},
            {"id": 3, "first_name": "Cal", "last_name": "Ng", "email": None, "mobile": "07700 900123",
             "date_of_birth": None, "created_at": NOW, "updated_at": NOW},
        ])
        conn.execute(insert(appointments), {"id": 1, "patient_id": 2, "status": "booked",
                                            "starts_at": datetime(1, 1, 1, 12, tzinfo=UTC)})
        conn.execute(insert(recalls), {"id": 1, "patient_id": 2, "recall_type": "Check-up", "status": "due",
                                       "due_date": date(9999, 12, 31)})
    old.dispose()

    db = open_database(db_url)
    try:
        with db.read() as conn:
            ann, bea = get_record(conn, RecordRef("patient", 1)), get_record(conn, RecordRef("patient", 2))
            cal = get_record(conn, RecordRef("patient", 3))
            due = get_record(conn, RecordRef("recall", 1))["due_date"]
            problems = list_record_problems(conn)
        assert (ann["email"], ann["mobile"], cal["mobile"]) == ("not-an-email", "call me", "07700 900123")
        assert bea["email"] == "bea@example.org" and due == date(9999, 12, 31)
        found = {(p.ref, p.field): p for p in problems}
        assert sorted(found) == [("appointment:1", "starts_at"), ("patient:1", "email"), ("patient:1", "mobile"),
                                 ("patient:3", "mobile"), ("recall:1", "due_date")]
        assert str(found["patient:1", "email"]) == "patient:1 field 'email': 'not-an-email' is not an email address"
        assert found["patient:1", "mobile"].value == "call me"
        assert found["patient:3", "mobile"].problem == (
            "'07700 900123' is not in E.164 (it would be stored as +447700900123)")
        assert found["recall:1", "due_date"].problem.endswith("is not between 1900-01-01 and 2100-12-31")
        assert found["appointment:1", "starts_at"].value.startswith("0001-01-01")

        # A corrected value drops out of the list; the others stay.
        with db.write() as conn:
            update_record(conn, RecordRef("patient", 1), {"email": "ann@example.org"}, "maria")
        with db.read() as conn:
            left = {(p.ref, p.field) for p in list_record_problems(conn)}
            only_patients = {(p.ref, p.field) for p in list_record_problems(conn, "patient")}
        assert ("patient:1", "email") not in left and ("patient:1", "mobile") in left
        assert only_patients == {("patient:1", "mobile"), ("patient:3", "mobile")}
    finally:
        db.dispose()


def test_a_new_database_has_no_problems(db) -> None:  # type: ignore[no-untyped-def]
    with db.read() as conn:
        assert list_record_problems(conn) == []
