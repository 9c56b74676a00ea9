"""A batch gathers its record events, history entries and steps and writes them together: kept exactly once."""

from __future__ import annotations

from runtime_workflows import add_patient, chain, detail, make_workflow, node, status
from sqlalchemy import func, select

from app.runtime import Runtime
from app.runtime.control import start_run
from app.store.records import get_record
from app.store.schema import history, record_events, steps


def _written_by(db, run_id: int) -> tuple[int, int]:
    """(record events, history entries) the run's steps wrote."""
    actor = f"run:{run_id}"
    with db.read() as conn:
        events = conn.execute(select(func.count()).select_from(record_events)
                              .where(record_events.c.actor == actor)).scalar_one()
        entries = conn.execute(select(func.count()).select_from(history).where(history.c.actor == actor)).scalar_one()
    return int(events), int(entries)


def test_a_step_rolled_back_takes_its_gathered_events_and_history_with_it(db, monkeypatch) -> None:
    poisoned_wf = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("note", "action.add_note", text="kept"),
        node("boom", "action.update_record", record="patient", field="last_name", value="Changed"),
        node("after", "action.add_note", text="never"),
    ], chain("start", "note", "boom", "after"), name="Poisoned")
    healthy_wf = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("note", "action.add_note", text="first"),
        node("mark", "action.update_record", record="patient", field="last_name", value="Marked"),
        node("again", "action.add_note", text="second"),
    ], chain("start", "note", "mark", "again"), name="Healthy")
    patient = add_patient(db)
    poisoned = start_run(db, poisoned_wf, record=patient, actor="maria")
    others = [start_run(db, healthy_wf, record=add_patient(db), actor="maria") for _ in range(3)]
    monkeypatch.setenv("CLINICFLOW_FAULT", "raise_in_step:boom:RuntimeError")
    Runtime(db, "rt").run_once()
    assert [(s["node_id"], s["status"]) for s in detail(db, poisoned)["steps"]] == [
        ("start", "completed"), ("note", "completed"), ("boom", "failed")]
    with db.read() as conn:
        record = get_record(conn, patient)
    assert record["last_name"] == "Smith" and record["notes"].endswith("kept") and "never" not in record["notes"]
    assert _written_by(db, poisoned) == (1, 1)   # the note's, once; nothing of the rolled-back change
    for run_id in others:
        assert status(db, run_id) == "completed"
        assert _written_by(db, run_id) == (3, 3)


def test_runs_of_one_batch_changing_the_same_patient_each_see_the_others_changes(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("note", "action.add_note", text="run {{ run.id }}"),
        node("mark", "action.update_record", record="patient", field="last_name", value="R{{ run.id }}"),
        node("task", "action.create_task", title="For {{ patient.last_name }}"),
    ], chain("start", "note", "mark", "task"), name="Same patient")
    patient = add_patient(db)
    run_ids = [start_run(db, workflow_id, record=patient, actor="maria") for _ in range(4)]
    Runtime(db, "rt").run_once()
    assert [status(db, r) for r in run_ids] == ["completed"] * 4
    with db.read() as conn:
        record = get_record(conn, patient)
        lines = record["notes"].splitlines()
        step_rows = conn.execute(select(func.count()).select_from(steps)).scalar_one()
    assert [line.split(" ", 2)[2] for line in lines] == [f"run {r}" for r in run_ids]
    assert record["last_name"] == f"R{run_ids[-1]}"
    assert step_rows == 4 * 4
    for run_id in run_ids:
        assert detail(db, run_id)["steps"][-1]["output"]["title"] == f"For R{run_id}"
        assert _written_by(db, run_id) == (3, 3)   # two changes and a task: an event and an entry each
