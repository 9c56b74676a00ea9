"""Workflows in the database: drafts, immutable numbered versions, enabling, and who did it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from app.store import Database, NotFound, WrongState
from app.store import workflows as store
from app.store.history import history_of
from app.store.schema import workflow_versions
from app.workflow import FORMAT, Workflow, WorkflowNotPublishable, load_workflow


def workflow(text: str = "Called", name: str = "Note on new patient") -> Workflow:
    return load_workflow({
        "format": FORMAT, "name": name,
        "nodes": [{"id": "start", "type": "trigger.record_event", "config": {"record_type": "patient", "event": "created"}},
                  {"id": "note", "type": "action.add_note", "config": {"text": text}}],
        "edges": [{"from": "start", "to": "note"}],
    })


def imported(db: Database, wf: Workflow | None = None) -> int:
    with db.write() as conn:
        return store.create_workflow(conn, wf or workflow(), "ann")


def info(db: Database, workflow_id: int) -> store.WorkflowInfo:
    with db.read() as conn:
        return store.get_info(conn, workflow_id)


def test_a_new_workflow_is_an_unpublished_disabled_draft(db: Database) -> None:
    workflow_id = imported(db)
    shown = info(db, workflow_id)
    assert shown.to_json() == {"id": workflow_id, "name": "Note on new patient", "trigger": "trigger.record_event",
                               "enabled": False, "published_version": None, "has_unpublished_changes": True}


def test_publish_numbers_versions_one_two_three(db: Database) -> None:
    workflow_id = imported(db)
    numbers = []
    for text in ("v1", "v2", "v3"):
        with db.write() as conn:
            store.update_draft(conn, workflow_id, workflow(text), "ann")
            numbers.append(store.publish(conn, workflow_id, "bob", note=f"text {text}"))
    assert numbers == [1, 2, 3]
    with db.read() as conn:
        versions = store.list_versions(conn, workflow_id)
    assert [v.number for v in versions] == [3, 2, 1]
    assert [v.published_by for v in versions] == ["bob"] * 3
    assert versions[0].to_json()["note"] == "text v3"
    assert versions[0].to_json()["published_at"].endswith("+00:00")


def test_editing_the_draft_never_changes_the_live_version(db: Database) -> None:
    workflow_id = imported(db, workflow("first"))
    with db.write() as conn:
        store.publish(conn, workflow_id, "ann")
    assert info(db, workflow_id).has_unpublished_changes is False
    with db.write() as conn:
        store.update_draft(conn, workflow_id, workflow("second"), "ann")
    with db.read() as conn:
        live = store.get_version(conn, workflow_id, 1)
        draft = store.get_draft(conn, workflow_id)
    assert live.node("note").config.text == "first"
    assert draft.node("note").config.text == "second"
    shown = info(db, workflow_id)
    assert shown.published_version == 1 and shown.has_unpublished_changes is True


def test_versions_are_immutable_snapshots(db: Database) -> None:
    workflow_id = imported(db, workflow("first"))
    with db.write() as conn:
        store.publish(conn, workflow_id, "ann")
        store.update_draft(conn, workflow_id, workflow("second"), "ann")
        store.publish(conn, workflow_id, "ann")
        store.update_draft(conn, workflow_id, workflow("third"), "ann")
    with db.read() as conn:
        assert store.get_version(conn, workflow_id, 1).node("note").config.text == "first"
        assert store.get_version(conn, workflow_id, 2).node("note").config.text == "second"
        with pytest.raises(NotFound, match=f"^workflow {workflow_id} has no version 3$"):
            store.get_version(conn, workflow_id, 3)


def test_publish_refuses_an_invalid_draft_and_stores_nothing(db: Database) -> None:
    broken = load_workflow({"format": FORMAT, "name": "Broken",
                            "nodes": [{"id": "note", "type": "action.add_note", "config": {}}]})
    workflow_id = imported(db, broken)
    with pytest.raises(WorkflowNotPublishable) as caught, db.write() as conn:
        store.publish(conn, workflow_id, "ann")
    assert "the workflow needs a trigger node" in str(caught.value)
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(workflow_versions)).scalar_one() == 0
        assert [h.action for h in history_of(conn, f"workflow:{workflow_id}")] == ["workflow.create"]


def test_publish_uses_the_practice_max_nodes(db: Database) -> None:
    from app.store.settings import set_default_limits

    workflow_id = imported(db)
    with db.write() as conn:
        set_default_limits(conn, {"max_nodes": 1})
    with pytest.raises(WorkflowNotPublishable, match="the workflow has 2 nodes; the limit is 1"), db.write() as conn:
        store.publish(conn, workflow_id, "ann")


def test_enable_is_refused_without_a_published_version(db: Database) -> None:
    workflow_id = imported(db)
    with pytest.raises(WrongState) as caught, db.write() as conn:
        store.set_enabled(conn, workflow_id, True, "ann")
    assert str(caught.value) == f"workflow {workflow_id} has no published version; publish it before enabling it"
    assert info(db, workflow_id).enabled is False


def test_enable_and_disable_are_recorded_with_who_did_it(db: Database) -> None:
    workflow_id = imported(db)
    with db.write() as conn:
        store.publish(conn, workflow_id, "ann", note="first")
    with db.write() as conn:
        assert store.set_enabled(conn, workflow_id, True, "bob") is True
    assert info(db, workflow_id).enabled is True
    with db.write() as conn:
        assert store.set_enabled(conn, workflow_id, True, "bob") is False  # already enabled: nothing to record
        assert store.set_enabled(conn, workflow_id, False, "cleo") is True
    assert info(db, workflow_id).enabled is False
    with db.read() as conn:
        entries = history_of(conn, f"workflow:{workflow_id}")
    assert [(h.action, h.actor) for h in entries] == [
        ("workflow.disable", "cleo"), ("workflow.enable", "bob"), ("workflow.publish", "ann"),
        ("workflow.create", "ann")]
    assert entries[2].detail == {"version": 1, "note": "first"}


def test_republishing_an_unchanged_draft_clears_the_unpublished_mark(db: Database) -> None:
    workflow_id = imported(db)
    with db.write() as conn:
        store.publish(conn, workflow_id, "ann")
        store.update_draft(conn, workflow_id, workflow("changed"), "ann")
    assert info(db, workflow_id).has_unpublished_changes is True
    with db.write() as conn:
        store.update_draft(conn, workflow_id, workflow(), "ann")
    assert info(db, workflow_id).has_unpublished_changes is False


def test_list_shows_every_workflow_in_id_order(db: Database) -> None:
    first = imported(db, workflow(name="First"))
    second = imported(db, workflow(name="Second"))
    with db.write() as conn:
        store.publish(conn, second, "ann")
    with db.read() as conn:
        listed: list[dict[str, Any]] = [i.to_json() for i in store.list_workflows(conn)]
    assert [(w["id"], w["name"], w["published_version"]) for w in listed] == [(first, "First", None), (second, "Second", 1)]


def test_unknown_workflow_is_not_found(db: Database) -> None:
    with db.write() as conn:
        for call in (lambda: store.publish(conn, 99, "ann"), lambda: store.set_enabled(conn, 99, True, "ann"),
                     lambda: store.list_versions(conn, 99), lambda: store.get_draft(conn, 99),
                     lambda: store.update_draft(conn, 99, workflow(), "ann")):
            with pytest.raises(NotFound, match=r"^there is no workflow 99$"):
                call()
