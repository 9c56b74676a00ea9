"""app.api.runs on real SQLite and PostgreSQL: the Runs tab's filters, counts and pages, and
the run viewer's detail of a failed run — the one read model the app and the CLI share."""

from __future__ import annotations

from datetime import timedelta

import pytest
from runtime_workflows import add_patient, chain, edge, make_workflow, node

from app.api import NotFound, RecordRef, WrongState, records, runs
from app.api.runs import RunFilter
from app.runtime import Runtime
from app.store.timeutil import utcnow
from app.workflow.vocabulary import RunStatus, StepStatus


def call_list(db) -> int:  # type: ignore[no-untyped-def]
    return make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("task", "action.create_task", title="Call {{ patient.first_name }}"),
    ], chain("start", "task"), name="Call list")


def texting(db) -> int:  # type: ignore[no-untyped-def]
    return make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("has_mobile", "logic.condition", rules=[{"field": "patient.mobile", "op": "is_set"}]),
        node("task", "action.create_task", title="Texted"),
        node("text", "action.send_sms", body="Hi"),
    ], [edge("start", "has_mobile"), edge("has_mobile", "task", "true"), edge("has_mobile", "text", "false")],
        name="Text")


def test_filters_narrow_the_runs_tab_and_the_count_agrees(db) -> None:  # type: ignore[no-untyped-def]
    calls, texts = call_list(db), texting(db)
    ann = add_patient(db)
    bob = add_patient(db, first_name="Bob", last_name="Jones", mobile="+441234567890")
    ann_runs = [runs.start_run(db, calls, record=ann, actor="maria") for _ in range(3)]
    bob_run = runs.start_run(db, texts, record=bob, actor="maria")
    Runtime(db).run_once()

    everything = runs.list_runs(db)
    assert [r.id for r in everything] == sorted([*ann_runs, bob_run], reverse=True)  # newest first
    assert runs.count_runs(db) == 4
    only_calls = RunFilter(workflow_id=calls)
    assert {r.id for r in runs.list_runs(db, only_calls)} == set(ann_runs) and runs.count_runs(db, only_calls) == 3
    # Words match the patient's name; a reference matches that record.
    assert [r.id for r in runs.list_runs(db, RunFilter(record="bob jon"))] == [bob_run]
    assert {r.id for r in runs.list_runs(db, RunFilter(record=str(ann)))} == set(ann_runs)
    assert runs.list_runs(db, RunFilter(record="nobody by that name")) == []
    assert runs.count_runs(db, RunFilter(status=RunStatus.COMPLETED)) == 4
    assert runs.count_runs(db, RunFilter(status=RunStatus.FAILED)) == 0
    later = utcnow() + timedelta(minutes=5)
    assert runs.count_runs(db, RunFilter(since=later)) == 0
    assert runs.count_runs(db, RunFilter(until=later)) == 4
    assert runs.list_runs(db, limit=2) == everything[:2]
    first = everything[-1]
    assert first.trigger_words == f"Patient Ann Smith ({ann})"
    assert first.started_by == "maria" and first.workflow_name == "Call list" and not first.is_active


def test_pages_by_keyset_match_pages_by_position(db) -> None:  # type: ignore[no-untyped-def]
    calls = call_list(db)
    ann = add_patient(db)
    ids = [runs.start_run(db, calls, record=ann, actor="maria") for _ in range(23)]
    newest_first = sorted(ids, reverse=True)
    flt = RunFilter(workflow_id=calls)
    total = runs.count_runs(db, flt)
    assert total == 23
    by_position = [runs.runs_page(db, flt, start, min(10, total - start), total) for start in (0, 10, 20)]
    assert [r.id for page in by_position for r in page] == newest_first
    # Going down from a loaded page, and up from one, reads the same rows without OFFSET.
    second = runs.runs_page(db, flt, 10, 10, total, below_id=by_position[0][-1].id)
    assert second == by_position[1]
    above = runs.runs_page(db, flt, 0, 10, total, above_id=by_position[1][0].id)
    assert above == by_position[0]
    # The last page (3 rows) read from the far end.
    assert [r.id for r in runs.runs_page(db, flt, 20, 3, total)] == newest_first[20:]
    window = runs.runs_window(db, flt, 10, 100)
    assert window.total == 23 and [r.id for r in window.rows] == newest_first[10:]


def test_detail_of_a_failed_run_names_the_step_and_the_patient(db) -> None:  # type: ignore[no-untyped-def]
    texts = texting(db)
    ann = add_patient(db)  # no mobile number
    run_id = runs.start_run(db, texts, record=ann, actor="maria")
    Runtime(db).run_once()

    detail = runs.run_detail(db, run_id)
    assert detail.status == RunStatus.FAILED and detail.finished_at is not None
    assert detail.error_message == f"Patient Ann Smith ({ann}) has no mobile number"
    assert [(s.node_id, s.status) for s in detail.steps] == [
        ("start", StepStatus.COMPLETED), ("has_mobile", StepStatus.COMPLETED), ("text", StepStatus.FAILED)]
    assert detail.path == ["start", "has_mobile", "text"]
    assert detail.definition is not None and detail.definition.name == "Text"
    shown = detail.to_json()
    assert shown["status"] == "failed" and shown["trigger"] == {"kind": "manual", "record": str(ann)}
    assert shown["steps"][-1]["error"]["message"] == detail.error_message
    assert shown["triggered_at"].endswith("+00:00")
    # The summary in the list is the same run, without steps.
    (summary,) = runs.list_runs(db, RunFilter(status=RunStatus.FAILED))
    assert summary.to_json() == {k: v for k, v in shown.items() if k != "steps"}


def test_retry_cancel_and_unknown_runs_are_refused_with_the_reason(db) -> None:  # type: ignore[no-untyped-def]
    calls = call_list(db)
    ann = add_patient(db)
    run_id = runs.start_run(db, calls, record=ann, actor="maria")
    Runtime(db).run_once()
    with pytest.raises(WrongState, match=f"run {run_id} is completed; only a running or waiting run can be cancelled"):
        runs.cancel_run(db, run_id, "maria")
    with pytest.raises(WrongState, match="only a failed run can be retried"):
        runs.retry_run(db, run_id, "maria")
    with pytest.raises(NotFound, match="there is no run 999999"):
        runs.run_detail(db, 999_999)
    waiting = runs.start_run(db, calls, record=ann, actor="maria")
    runs.cancel_run(db, waiting, "lee")
    cancelled = runs.run_detail(db, waiting)
    assert cancelled.status == RunStatus.CANCELLED and cancelled.cancelled_by == "lee"


def test_a_deleted_trigger_record_is_still_named(db) -> None:  # type: ignore[no-untyped-def]
    calls = call_list(db)
    ann = add_patient(db)
    run_id = runs.start_run(db, calls, record=ann, actor="maria")
    from sqlalchemy import delete

    from app.store.schema import patients, record_events

    with db.write() as conn:
        conn.execute(delete(record_events))
        conn.execute(delete(patients).where(patients.c.id == ann.id))
    assert runs.run_detail(db, run_id).trigger_words == f"Patient {ann} (deleted)"
    assert records.describe_record(db, RecordRef("patient", ann.id)) == f"Patient {ann} (deleted)"
