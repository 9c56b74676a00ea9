"""The demo practice: realistic records, four published example workflows, safe to load twice."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from app.store import Database
from app.store import workflows as wf_store
from app.store.demo import example_workflow_files, load_demo
from app.store.history import history_of
from app.store.records import add_record, list_records
from app.store.schema import record_events
from app.workflow import load_workflow, publish_problems


@pytest.fixture
def demo(db: Database) -> str:
    return load_demo(db, "demo-user")


def test_demo_has_a_small_practice_with_gaps_in_contact_details(db: Database, demo: str) -> None:
    with db.read() as conn:
        patients = list_records(conn, "patient")
    assert 35 <= len(patients) <= 45
    assert any(p["email"] is None for p in patients) and any(p["mobile"] is None for p in patients)
    assert any(p["email"] is None and p["mobile"] is None for p in patients)
    assert len({(p["first_name"], p["last_name"]) for p in patients}) == len(patients)


def test_demo_appointments_are_past_and_upcoming_with_several_statuses(db: Database, demo: str) -> None:
    now = datetime.now(UTC)
    with db.read() as conn:
        appointments = list_records(conn, "appointment")
    past = [a for a in appointments if a["starts_at"] < now]
    upcoming = [a for a in appointments if a["starts_at"] > now]
    assert past and upcoming
    assert {a["status"] for a in past} >= {"completed", "no_show", "cancelled"}
    assert all(a["status"] in ("booked", "cancelled") for a in upcoming)
    assert any(a["status"] == "booked" for a in upcoming)
    assert len({a["practitioner"] for a in appointments}) >= 3
    assert all(a["ends_at"] > a["starts_at"] for a in appointments)


def test_demo_recalls_are_due_and_not_yet_due(db: Database, demo: str) -> None:
    today = date.today()
    with db.read() as conn:
        recalls = list_records(conn, "recall")
        tasks = list_records(conn, "task")
    due = [r for r in recalls if r["status"] == "due"]
    assert any(r["due_date"] <= today for r in due) and any(r["due_date"] > today for r in due)
    assert 3 <= len(tasks) <= 10 and {t["status"] for t in tasks} == {"open", "done"}


def test_demo_examples_are_published_as_version_one_and_disabled(db: Database, demo: str) -> None:
    with db.read() as conn:
        listed = [w.to_json() for w in wf_store.list_workflows(conn)]
        history = history_of(conn, f"workflow:{listed[0]['id']}")
    assert [w["name"] for w in listed] == ["Appointment reminder", "Recall reminder", "Follow-up after appointment",
                                           "New patient welcome"]
    assert all(w["published_version"] == 1 and not w["enabled"] and not w["has_unpublished_changes"] for w in listed)
    # The recall reminder runs once per due recall on a daily schedule (issue 12), not by hand.
    assert [w["trigger"] for w in listed] == ["trigger.record_event", "trigger.schedule", "trigger.record_event",
                                              "trigger.record_event"]
    assert [(h.action, h.actor) for h in history] == [("workflow.publish", "demo-user"), ("workflow.create", "demo-user")]
    assert "published as version 1 but disabled" in demo
    assert "clinicflow workflow enable ID" in demo and "\n" not in demo


def test_demo_records_are_written_through_the_records_api(db: Database, demo: str) -> None:
    """Every demo record has its created event and history, so it looks like real practice data."""
    with db.read() as conn:
        created = conn.execute(select(func.count()).select_from(record_events)
                               .where(record_events.c.event == "created")).scalar_one()
        records = sum(len(list_records(conn, t)) for t in ("patient", "appointment", "task", "recall"))
        assert created == records
        assert history_of(conn, "patient:1")[0].actor == "demo-user"


def test_demo_events_are_not_replayed_when_an_example_is_enabled(db: Database, demo: str) -> None:
    with db.read() as conn:
        pending = conn.execute(select(func.count()).select_from(record_events)
                               .where(record_events.c.dispatched.is_(False))).scalar_one()
    assert pending == 0


def test_loading_the_demo_twice_adds_nothing(db: Database, demo: str) -> None:
    def sizes() -> tuple[int, ...]:
        with db.read() as conn:
            return (*(len(list_records(conn, t)) for t in ("patient", "appointment", "task", "recall")),
                    len(wf_store.list_workflows(conn)))

    before = sizes()
    assert load_demo(db, "demo-user") == "Demo data not added: this database already has patients or workflows."
    assert sizes() == before


def test_demo_is_not_added_to_a_practice_that_has_patients(db: Database) -> None:
    with db.write() as conn:
        add_record(conn, "patient", {"first_name": "Real", "last_name": "Patient"}, "ann")
    assert load_demo(db, "ann").startswith("Demo data not added")
    with db.read() as conn:
        assert len(list_records(conn, "patient")) == 1 and wf_store.list_workflows(conn) == []


def test_example_files_are_valid_publishable_workflows_laid_out_left_to_right() -> None:
    files = example_workflow_files()
    assert len(files) == 4
    for resource in files:
        data = json.loads(resource.read_text(encoding="utf-8"))
        workflow = load_workflow(data)
        assert publish_problems(workflow) == [], resource.name
        positions = {n.id: n.position for n in workflow.nodes}
        assert all(p is not None for p in positions.values()), resource.name
        for edge in workflow.edges:
            assert positions[edge.target][0] > positions[edge.source][0], (resource.name, edge)  # type: ignore[index]


def test_appointment_reminder_waits_until_a_day_before_and_checks_it_is_still_booked() -> None:
    by_name = {load_workflow(f.read_text(encoding="utf-8")).name: load_workflow(f.read_text(encoding="utf-8"))
               for f in example_workflow_files()}
    reminder = by_name["Appointment reminder"]
    assert reminder.trigger is not None and reminder.trigger.config.event == "booked"  # type: ignore[attr-defined]
    wait = reminder.node("day_before").config
    assert (wait.until, wait.offset_amount, wait.offset_unit) == (  # type: ignore[attr-defined]
        "{{ appointment.starts_at }}", -24, "hours")
    recall = by_name["Recall reminder"]
    assert {(e.port, recall.node(e.target).type) for e in recall.outgoing("has_email")} == {
        ("true", "action.send_email"), ("false", "action.create_task")}


def test_two_workstations_loading_the_demo_at_once_load_it_once(db: Database) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        summaries = list(pool.map(lambda who: load_demo(db, who), ["ann", "bob"]))
    assert sorted(s.split(":")[0] for s in summaries) == ["Demo data not added", "Demo practice loaded"]
    with db.read() as conn:
        assert len(wf_store.list_workflows(conn)) == 4 and len(list_records(conn, "patient")) == 40
