"""History, retention and erasure (DESIGN section 14) on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.api import erasure, history
from app.runtime import Runtime
from app.runtime.control import start_run
from app.runtime.retention import daily, prune
from app.store import open_database
from app.store.errors import NotFound, WrongState, InvalidRecord
from app.store.records import RecordRef, add_record, find_record, update_record
from app.store.schema import appointments, maintenance_claims, record_events, runs, steps
from app.store.settings import RETENTION_DAYS_KEY, set_setting
from app.store.timeutil import utcnow

from runtime_workflows import add_patient, chain, detail, make_workflow, node, status


def task_workflow(db) -> int:
    return make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                              node("task", "action.create_task", title="Call {{ patient.first_name }} {{ patient.email }}")],
                         chain("start", "task"), name="Calls")


def wait_workflow(db) -> int:
    return make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                              node("pause", "logic.wait", amount=2, unit="days")], chain("start", "pause"), name="Later")


def age_runs(db, days: int) -> None:
    with db.write() as conn:
        old = utcnow() - timedelta(days=days)
        conn.execute(update(runs).where(runs.c.finished_at.is_not(None)).values(finished_at=old, triggered_at=old))


# --- history -------------------------------------------------------------------------------

def test_history_filters_pages_and_exports(cli, db_url: str) -> None:
    db = open_database(db_url)
    try:
        workflow_id = task_workflow(db)
        patient = add_patient(db)
        for actor in ("maria", "omar", "maria"):
            start_run(db, workflow_id, record=patient, actor=actor)
        page = history.history_page(db, history.HistoryFilter(actor="maria", action="run.start"), size=1)
        assert page.total == 2 and len(page.rows) == 1
        older = history.history_page(db, history.HistoryFilter(actor="maria", action="run.start"), size=1,
                                     before_id=page.before_id)
        assert older.rows[0].id < page.rows[0].id and older.rows[0].subject == "run:1"
    finally:
        db.dispose()
    out = json.loads(cli("history", "--actor", "maria", "--json").out)
    assert [e["subject"] for e in out] == ["run:3", "run:1"]
    assert set(out[0]) == {"at", "actor", "action", "subject", "detail"} and out[0]["at"].endswith("+00:00")
    subject = json.loads(cli("history", "--subject", str(patient), "--json").out)
    assert [e["action"] for e in subject] == ["record.add"]
    rows = list(csv.reader(io.StringIO(cli("history", "--csv", "--since", "2000-01-01").out)))
    assert rows[0] == ["at", "actor", "action", "subject", "detail"] and len(rows) > 4
    assert cli("history", "--since", "2999-01-01", "--json").out.strip() == "[]"
    bad = cli("history", "--since", "yesterday")
    assert bad.code == 2 and "'yesterday' is not a date" in bad.err
    text = cli("history", "--limit", "1")
    assert text.code == 0 and "run.start" in text.out and len(text.out.splitlines()) == 2


# --- retention -----------------------------------------------------------------------------

def test_prune_redacts_old_runs_step_data_and_keeps_what_the_runs_tab_shows(cli, db_url: str) -> None:
    db = open_database(db_url)
    try:
        workflow_id = task_workflow(db)
        patient = add_patient(db, email="ann@example.org")
        old = [start_run(db, workflow_id, record=patient, actor="maria") for _ in range(3)]
        Runtime(db, "rt").run_once()
        age_runs(db, 800)
        recent = start_run(db, workflow_id, record=patient, actor="maria")
        Runtime(db, "rt").run_once()
    finally:
        db.dispose()
    dry = cli("maintenance", "prune", "--dry-run")
    assert dry.code == 0 and dry.out.startswith("3 runs finished before") and "dry run" in dry.out
    before = json.loads(cli("run", "show", str(old[0]), "--json").out)
    assert "ann@example.org" in json.dumps(before["steps"])
    done = cli("maintenance", "prune")
    assert done.code == 0 and done.out.startswith("3 runs finished before"), done.out + done.err
    after = json.loads(cli("run", "show", str(old[0]), "--json").out)
    today = utcnow().date().isoformat()
    for key in ("status", "triggered_at", "finished_at", "version", "trigger", "workflow_id"):
        assert after[key] == before[key]
    assert all(s["input"] == {"redacted": today} and s["output"] == {"redacted": today} for s in after["steps"])
    assert "ann@example.org" not in json.dumps(after)
    assert "ann@example.org" in json.dumps(json.loads(cli("run", "show", str(recent), "--json").out))
    assert cli("maintenance", "prune").out.startswith("0 runs")


def test_retention_zero_keeps_everything_and_the_day_is_pruned_by_one_runtime(db) -> None:
    workflow_id = task_workflow(db)
    patient = add_patient(db)
    run_id = start_run(db, workflow_id, record=patient, actor="maria")
    Runtime(db, "rt").run_once()
    age_runs(db, 800)
    with db.write() as conn:
        set_setting(conn, RETENTION_DAYS_KEY, 0)
    assert prune(db).cutoff is None and daily(db, "rt-1") is None
    with db.write() as conn:
        set_setting(conn, RETENTION_DAYS_KEY, 30)
    first, second = daily(db, "rt-1"), daily(db, "rt-2")
    assert first is not None and first.runs == 1 and second is None
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(maintenance_claims)
                            .where(maintenance_claims.c.task == "retention")).scalar_one() == 1
    assert detail(db, run_id)["steps"][1]["output"] == {"redacted": utcnow().date().isoformat()}


def test_prune_works_in_bounded_transactions(db) -> None:
    workflow_id = task_workflow(db)
    patient = add_patient(db)
    for _ in range(7):
        start_run(db, workflow_id, record=patient, actor="maria")
    Runtime(db, "rt").run_once()
    age_runs(db, 800)
    seen: list[int] = []
    result = prune(db, batch_runs=3, progress=seen.append)
    assert (result.runs, result.batches, seen) == (7, 3, [3, 6, 7])


# --- erasure -------------------------------------------------------------------------------

def erasable(db) -> tuple[RecordRef, RecordRef, int, int]:
    """A patient with an appointment, a completed run, a waiting run; another patient untouched."""
    patient = add_patient(db, email="ann@example.org", notes="allergic to penicillin")
    other = add_patient(db, first_name="Bob")
    with db.write() as conn:
        add_record(conn, "appointment", {"patient_id": patient.id, "starts_at": "2030-01-01T09:00:00+00:00"}, "maria")
        add_record(conn, "recall", {"patient_id": patient.id, "recall_type": "checkup", "due_date": "2030-01-01"},
                   "maria")
        update_record(conn, patient, {"email": "ann@clinic.example"}, "maria")
    done = start_run(db, task_workflow(db), record=patient, actor="maria")
    waiting = start_run(db, wait_workflow(db), record=patient, actor="maria")
    start_run(db, 1, record=other, actor="maria")
    Runtime(db, "rt").run_once()
    return patient, other, done, waiting


def test_erase_patient_deletes_cancels_redacts_and_keeps_only_the_reference(db) -> None:
    patient, other, done, waiting = erasable(db)
    plan = erasure.erasure_plan(db, patient)
    assert (plan.appointments, plan.recalls, plan.active_runs, plan.runs) == (1, 1, 1, 2)
    assert plan.words().startswith(f"Patient Ann Smith ({patient}) will be deleted with their notes, 1 appointment")
    erasure.erase_patient(db, patient, "maria")
    with db.read() as conn:
        assert find_record(conn, patient) is None and find_record(conn, other) is not None
        assert conn.execute(select(func.count()).select_from(appointments)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(record_events).where(
            record_events.c.record_type == "patient", record_events.c.record_id == patient.id)).scalar_one() == 0
    assert status(db, waiting) == "cancelled" and status(db, done) == "completed"
    everything = json.dumps([detail(db, done), detail(db, waiting)])
    assert "ann@" not in everything and "Ann" not in everything.replace("Annotation", "")
    entries = history.history_page(db, history.HistoryFilter(subject=str(patient))).rows
    assert entries[0].action == "record.erase" and entries[0].detail is None
    assert all(e.detail is None for e in entries)  # the before/after values are gone
    assert "bob" not in json.dumps([e.to_json() for e in entries]).lower()
    with pytest.raises(NotFound):
        erasure.erase_patient(db, patient, "maria")
    with pytest.raises(InvalidRecord, match="only a patient can be erased"):
        erasure.erasure_plan(db, "appointment:1")


def test_erase_is_refused_while_a_message_to_them_is_being_sent(db) -> None:
    patient, _, _, waiting = erasable(db)
    with db.write() as conn:
        conn.execute(update(steps).where(steps.c.run_id == waiting, steps.c.status == "waiting")
                     .values(status="running", delivery_state="sending"))
    with pytest.raises(WrongState, match=r"a message to Ann Smith \(patient:1\) is being sent right now"):
        erasure.erase_patient(db, patient, "maria")
    with db.read() as conn:
        assert find_record(conn, patient) is not None  # nothing half-done


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cli_erase_asks_and_refuses_without_yes_when_not_interactive(cli, db_url: str, monkeypatch) -> None:
    db = open_database(db_url)
    try:
        patient, *_ = erasable(db)
    finally:
        db.dispose()
    refused = cli("record", "erase", str(patient), stdin="yes\n")
    assert refused.code == 1 and "add --yes" in refused.err and "1 appointment" in refused.err
    assert cli("record", "show", str(patient)).code == 0
    import sys
    monkeypatch.setattr(sys, "stdin", _Terminal("no\n"))
    from app.cli import main
    assert main(["--db", db_url, "record", "erase", str(patient)]) == 1
    monkeypatch.setattr(sys, "stdin", _Terminal("yes\n"))
    assert main(["--db", db_url, "record", "erase", str(patient)]) == 0
    assert cli("record", "show", str(patient)).code == 1
    assert cli("record", "erase", "patient:999", "--yes").err.strip() == "clinicflow: there is no patient:999"
