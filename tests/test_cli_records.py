"""`clinicflow record ...` and `clinicflow init` end to end: JSON shapes, events, `--as`, every refusal."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import run_clinicflow
from sqlalchemy import func, select

from app.store import open_database
from app.store.history import history_of
from app.store.schema import history, record_events

PATIENT_FIELDS = {"id", "first_name", "last_name", "date_of_birth", "email", "mobile", "notes", "email_opt_out",
                  "sms_opt_out", "marketing_consent", "created_at", "updated_at"}
APPOINTMENT_FIELDS = {"id", "patient_id", "starts_at", "ends_at", "practitioner", "reason", "status"}


def one_line_refusal(result: Any) -> str:
    assert result.code == 1, result
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    return lines[0].removeprefix("clinicflow: ")


def stored(db_url: str) -> dict[str, Any]:
    """What the database holds, to show a refusal stored nothing."""
    from app.store.records import count_records, list_records

    db = open_database(db_url)
    try:
        with db.read() as conn:
            return {
                **{t: count_records(conn, t) for t in ("patient", "appointment", "task", "recall")},
                "events": conn.execute(select(func.count()).select_from(record_events)).scalar_one(),
                "history": conn.execute(select(func.count()).select_from(history)).scalar_one(),
                "appointments": list_records(conn, "appointment"),
            }
    finally:
        db.dispose()


def events_of(db_url: str, ref: str) -> list[tuple[str, str]]:
    record_type, record_id = ref.split(":")
    db = open_database(db_url)
    try:
        with db.read() as conn:
            rows = conn.execute(select(record_events.c.event, record_events.c.actor).where(
                record_events.c.record_type == record_type, record_events.c.record_id == int(record_id))
                .order_by(record_events.c.id)).all()
            return [(r.event, r.actor) for r in rows]
    finally:
        db.dispose()


@pytest.fixture
def practice(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("record", "add", "patient", "first_name=Ann", "last_name=Smith", "email=ann@example.org").out == "patient:1\n"
    assert cli("record", "add", "appointment", "patient_id=1", "starts_at=2026-12-01 09:30",
               "practitioner=Dr Okafor").out == "appointment:1\n"


def test_add_prints_the_reference_and_writes_events_with_the_actor(cli, db_url: str) -> None:
    result = cli("--as", "reception", "record", "add", "patient", "first_name=Ann", "last_name=Smith")
    assert (result.code, result.out) == (0, "patient:1\n")
    booked = cli("record", "add", "appointment", "patient_id=1", "starts_at=2026-12-01T09:30:00+00:00", "--as", "bob")
    assert booked.out == "appointment:1\n"
    assert events_of(db_url, "patient:1") == [("created", "reception")]
    assert events_of(db_url, "appointment:1") == [("created", "bob"), ("booked", "bob")]


def test_update_writes_updated_and_status_events_and_history(cli, db_url: str, practice: None) -> None:
    result = cli("--as", "bob", "record", "update", "appointment:1", "status=cancelled", "reason=Unwell")
    assert (result.code, result.out, result.err) == (0, "", "")
    assert events_of(db_url, "appointment:1")[2:] == [("updated", "bob"), ("cancelled", "bob")]
    db = open_database(db_url)
    try:
        with db.read() as conn:
            latest = history_of(conn, "appointment:1")[0]
    finally:
        db.dispose()
    assert (latest.action, latest.actor, latest.detail) == (
        "record.update", "bob", {"status": ["booked", "cancelled"], "reason": [None, "Unwell"]})


def test_update_with_nothing_new_says_so(cli, db_url: str, practice: None) -> None:
    before = stored(db_url)
    result = cli("record", "update", "patient:1", "first_name=Ann")
    assert (result.code, result.err) == (0, "patient:1: nothing changed\n")
    assert stored(db_url) == before


def test_show_json_is_one_record_with_the_design_fields(cli, practice: None) -> None:
    shown = json.loads(cli("record", "show", "appointment:1", "--json").out)
    assert set(shown) == APPOINTMENT_FIELDS
    assert shown["status"] == "booked" and shown["practitioner"] == "Dr Okafor"
    assert shown["starts_at"].endswith("+00:00")
    patient = json.loads(cli("record", "show", "patient:1", "--json").out)
    assert set(patient) == PATIENT_FIELDS and patient["email"] == "ann@example.org"


def test_show_in_words(cli, practice: None) -> None:
    result = cli("record", "show", "patient:1")
    assert result.out.splitlines()[0] == "Patient Ann Smith (patient:1)"
    assert "  email: ann@example.org" in result.out.splitlines()


def test_list_json_is_a_list_of_records(cli, practice: None) -> None:
    listed = json.loads(cli("record", "list", "appointment", "--json").out)
    assert [set(r) for r in listed] == [APPOINTMENT_FIELDS]
    assert json.loads(cli("record", "list", "task", "--json").out) == []
    empty = cli("record", "list", "task")
    assert (empty.code, empty.out, empty.err) == (0, "", "No task records.\n")


def test_list_search(cli, practice: None) -> None:
    cli("record", "add", "patient", "first_name=Bilal", "last_name=Hussain")
    found = json.loads(cli("record", "list", "patient", "--search", "HUSS", "--json").out)
    assert [p["first_name"] for p in found] == ["Bilal"]


@pytest.mark.parametrize("args, reason", [
    (("record", "add", "patient", "first_name=A", "last_name=B", "shoe_size=9"),
     "a patient has no field 'shoe_size' (fields: first_name, last_name, date_of_birth, email, mobile, notes, "
     "email_opt_out, sms_opt_out, marketing_consent)"),
    (("record", "add", "patient", "first_name=A", "last_name=B", "date_of_birth=31/12/1990"),
     "patient field 'date_of_birth': '31/12/1990' is not a date (use YYYY-MM-DD)"),
    (("record", "add", "appointment", "patient_id=1", "starts_at=next tuesday"),
     "appointment field 'starts_at': 'next tuesday' is not a date-time (use YYYY-MM-DD HH:MM, local time, or ISO 8601)"),
    (("record", "add", "appointment", "patient_id=1", "starts_at=2026-12-01 09:00", "status=tentative"),
     "appointment field 'status': 'tentative' is not one of booked, cancelled, completed, no_show"),
    (("record", "add", "recall", "patient_id=1", "recall_type=Check-up"), "a recall needs due_date"),
    (("record", "add", "appointment", "patient_id=9", "starts_at=2026-12-01 09:00"),
     "appointment field 'patient_id': there is no patient:9"),
    (("record", "add", "patient", "first_name"), "'first_name' is not field=value"),
    (("record", "update", "appointment:1", "status=tentative"),
     "appointment field 'status': 'tentative' is not one of booked, cancelled, completed, no_show"),
    (("record", "update", "appointment:1", "ends_at=soon"),
     "appointment field 'ends_at': 'soon' is not a date-time (use YYYY-MM-DD HH:MM, local time, or ISO 8601)"),
    (("record", "update", "appointment:1", "colour=red"),
     "an appointment has no field 'colour' (fields: patient_id, starts_at, ends_at, practitioner, reason, status)"),
    (("record", "update", "appointment:1", "id=7"), "appointment field 'id' cannot be set"),
    (("record", "update", "patient:9", "first_name=Bo"), "there is no patient:9"),
    (("record", "update", "patient:9", "shoe_size=9"), "there is no patient:9"),
    (("record", "update", "appointment", "status=cancelled"),
     "'appointment' is not a record reference (use TYPE:ID with TYPE one of patient, appointment, task, recall, "
     "e.g. patient:12)"),
    (("record", "update", "invoice:1", "amount=3"),
     "'invoice:1' is not a record reference (use TYPE:ID with TYPE one of patient, appointment, task, recall, "
     "e.g. patient:12)"),
    (("record", "show", "recall:4"), "there is no recall:4"),
    (("record", "show", "patient:99999999999"), "there is no patient:99999999999"),
    (("record", "update", "patient:99999999999", "first_name=Bo"), "there is no patient:99999999999"),
    (("record", "add", "appointment", "patient_id=99999999999", "starts_at=2026-12-01 09:00"),
     "appointment field 'patient_id': there is no patient:99999999999"),
    (("record", "show", "patient-1"),
     "'patient-1' is not a record reference (use TYPE:ID with TYPE one of patient, appointment, task, recall, "
     "e.g. patient:12)"),
])
def test_refusals_exit_1_with_one_line_and_store_nothing(cli, db_url: str, practice: None,
                                                         args: tuple[str, ...], reason: str) -> None:
    before = stored(db_url)
    assert one_line_refusal(cli(*args)) == reason
    assert stored(db_url) == before


@pytest.mark.parametrize("args", [("record", "add", "invoice", "amount=3"), ("record", "list", "invoice"),
                                  ("record", "list"), ("record", "update", "patient:1"), ("record",)])
def test_unknown_record_type_and_missing_arguments_are_usage_errors(cli, args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.code == 2
    assert result.out == ""


def test_unknown_record_type_names_the_choices(cli) -> None:
    result = cli("record", "add", "invoice", "amount=3")
    assert "invalid choice: 'invoice'" in result.err and "patient" in result.err


# --- init and the real entry point -------------------------------------------------------------

def test_init_creates_the_database_and_reports_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "new" / "practice.sqlite3"
    result = run_clinicflow("--db", str(path), "init")
    assert (result.code, result.out) == (0, "")
    assert result.err == f"Database ready: SQLite {path}\n"
    assert path.exists()


def test_init_demo_loads_once_through_the_entry_point(db_url: str) -> None:
    first = run_clinicflow("--db", db_url, "--as", "demo", "init", "--demo")
    assert first.code == 0, first.err
    assert first.err.splitlines()[0].startswith("Demo practice loaded: 40 patients, ")
    listed = json.loads(run_clinicflow("--db", db_url, "workflow", "list", "--json").out)
    assert [(w["published_version"], w["enabled"]) for w in listed] == [(1, False)] * 4
    second = run_clinicflow("--db", db_url, "init", "--demo")
    assert second.code == 0
    assert second.err.splitlines()[0] == "Demo data not added: this database already has patients or workflows."
    assert len(json.loads(run_clinicflow("--db", db_url, "workflow", "list", "--json").out)) == 4
    patients = json.loads(run_clinicflow("--db", db_url, "record", "list", "patient", "--json").out)
    assert len(patients) == 40 and set(patients[0]) == PATIENT_FIELDS


def test_demo_examples_can_be_enabled_after_init(sqlite_url: str) -> None:
    run_clinicflow("--db", sqlite_url, "init", "--demo")
    assert run_clinicflow("--db", sqlite_url, "workflow", "enable", "2").code == 0
    listed = json.loads(run_clinicflow("--db", sqlite_url, "workflow", "list", "--json").out)
    assert [w["enabled"] for w in listed] == [False, True, False, False]


def test_entry_point_records_round_trip(db_url: str) -> None:
    def run(*args: str) -> Any:
        return run_clinicflow("--db", db_url, *args)

    assert run("record", "add", "patient", "first_name=Ann", "last_name=Smith").out == "patient:1\n"
    assert run("--as", "bob", "record", "update", "patient:1", "mobile=+44 7700 900000").code == 0
    shown = json.loads(run("record", "show", "patient:1", "--json").out)
    assert shown["mobile"] == "+447700900000"
    refused = run("record", "update", "patient:1", "date_of_birth=yesterday")
    assert (refused.code, refused.err) == (
        1, "clinicflow: patient field 'date_of_birth': 'yesterday' is not a date (use YYYY-MM-DD)\n")
    assert run("record", "list", "nothing").code == 2


def test_output_piped_into_a_closed_reader_is_not_an_error(sqlite_url: str) -> None:
    import subprocess
    import sys

    run_clinicflow("--db", sqlite_url, "init", "--demo")
    proc = subprocess.run(f"'{sys.executable}' -m app --db '{sqlite_url}' record list appointment | head -1",
                          shell=True, capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith("id\t")
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_times_without_offset_are_local_time_and_json_is_utc(sqlite_url: str) -> None:
    """A receptionist in Auckland types 09:30; the JSON says 20:30 UTC the day before."""
    auckland = {"TZ": "Pacific/Auckland"}
    run_clinicflow("--db", sqlite_url, "record", "add", "patient", "first_name=Ann", "last_name=Smith", env=auckland)
    added = run_clinicflow("--db", sqlite_url, "record", "add", "appointment", "patient_id=1",
                           "starts_at=2026-12-01 09:30", env=auckland)
    assert added.code == 0, added.err
    shown = json.loads(run_clinicflow("--db", sqlite_url, "record", "show", "appointment:1", "--json").out)
    assert shown["starts_at"] == "2026-11-30T20:30:00+00:00"
    text = run_clinicflow("--db", sqlite_url, "record", "show", "appointment:1", env=auckland).out
    assert "  starts_at: 2026-12-01 09:30" in text.splitlines()
    listed = run_clinicflow("--db", sqlite_url, "record", "list", "appointment", env=auckland).out
    assert "2026-12-01 09:30" in listed.splitlines()[1]


def test_a_bad_email_or_mobile_is_refused_on_one_line_naming_the_field(cli, db_url: str) -> None:
    assert cli("record", "add", "patient", "first_name=Ann", "last_name=Smith").code == 0
    before = stored(db_url)
    refusal = one_line_refusal(cli("record", "add", "patient", "first_name=Bea", "last_name=Jones",
                                   "email=not-an-email"))
    assert refusal == "patient field 'email': 'not-an-email' is not an email address"
    refusal = one_line_refusal(cli("record", "update", "patient:1", "mobile=call me"))
    assert refusal == "patient field 'mobile': 'call me' is not a phone number (national numbers are read as GB)"
    refusal = one_line_refusal(cli("record", "add", "appointment", "patient_id=1",
                                   "starts_at=0001-01-01T12:00:00+00:00"))
    assert refusal == ("appointment field 'starts_at': '0001-01-01T12:00:00+00:00' "
                       "is not between 1900-01-01 and 2100-12-31")
    assert stored(db_url) == before
    assert cli("record", "update", "patient:1", "mobile=07700 900123").code == 0
    assert json.loads(cli("record", "show", "patient:1", "--json").out)["mobile"] == "+447700900123"


def test_record_list_search_percent_matches_only_a_literal_percent(cli) -> None:
    cli("record", "add", "patient", "first_name=Ann", "last_name=Smith")
    cli("record", "add", "patient", "first_name=Bea", "last_name=Jones", "notes=paid 50%")
    listed = json.loads(cli("record", "list", "patient", "--search", "%", "--json").out)
    assert [p["first_name"] for p in listed] == ["Bea"]


def test_a_database_in_a_folder_that_does_not_exist_is_refused_not_created(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "nonexistent" / "dir" / "clinic.sqlite3"
    result = run_clinicflow("--db", str(path), "record", "list", "patient")
    assert one_line_refusal(result) == f"The folder {path.parent} does not exist"
    assert not (tmp_path / "nonexistent").exists()
