"""Opting out: by SMS reply (`POST /sms/inbound`), from the command line (with history of
who and how), and "Stop all automations for this patient"."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from runtime_workflows import add_patient, chain, make_workflow, node
from sqlalchemy import select

from app.api.contact import contact_preferences, stop_all_automations
from app.runtime import Runtime
from app.runtime.control import start_run
from app.runtime.integrations import serve_webhooks, set_integration
from app.store.history import history_of
from app.store.records import add_record, get_record
from app.store.schema import runs, steps
from app.store.timeutil import utcnow


@pytest.fixture
def server(db: Any) -> Iterator[Any]:
    webhooks = serve_webhooks(db, "127.0.0.1", 0)
    yield webhooks
    webhooks.shutdown()


def post(server: Any, body: Any, token: str | None) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request("POST", "/sms/inbound", body=data, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def inbound_token(db: Any) -> str:
    with db.write() as conn:
        set_integration(conn, "sms", {"url": "http://127.0.0.1:9/", "token": "out-1", "inbound_token": "in-7"}, "t")
    return "in-7"


def opted_out(db: Any, ref: Any) -> bool:
    with db.read() as conn:
        return bool(get_record(conn, ref)["sms_opt_out"])


@pytest.mark.parametrize("word", ["STOP", " stop ", "StopAll", "UNSUBSCRIBE", "cancel", "End", "quit\n"])
def test_a_stop_word_opts_out_every_patient_with_that_mobile(db, server, word: str) -> None:
    token = inbound_token(db)
    ann = add_patient(db, mobile="07700 900123")
    twin = add_patient(db, first_name="Bea", mobile="+447700900123")
    other = add_patient(db, first_name="Cy", mobile="07700 900999")
    status, answer = post(server, {"from": "+447700900123", "body": word}, token)
    assert (status, answer) == (200, {"changed": 2})
    assert opted_out(db, ann) and opted_out(db, twin) and not opted_out(db, other)
    with db.read() as conn:
        entry = next(e for e in history_of(conn, str(ann)) if e.action == "patient.opt_out")
    assert entry.detail["via"] == "SMS reply from +447700900123"
    assert entry.detail["changes"] == {"sms_opt_out": [False, True]}
    # Again: nobody left to change.
    assert post(server, {"from": "07700 900123", "body": "STOP"}, token) == (200, {"changed": 0})


def test_other_replies_change_nobody(db, server) -> None:
    token = inbound_token(db)
    ann = add_patient(db, mobile="07700 900123")
    assert post(server, {"from": "+447700900123", "body": "Please stop by at 3"}, token) == (200, {"changed": 0})
    assert not opted_out(db, ann)


def test_a_wrong_token_is_401_and_a_bad_body_400(db, server) -> None:
    token = inbound_token(db)
    ann = add_patient(db, mobile="07700 900123")
    assert post(server, {"from": "+447700900123", "body": "STOP"}, "wrong")[0] == 401
    assert post(server, {"from": "+447700900123", "body": "STOP"}, None)[0] == 401
    assert post(server, {"body": "STOP"}, token)[0] == 400
    assert post(server, {"from": "call me", "body": "STOP"}, token)[0] == 400
    assert post(server, b"{not json", token)[0] == 400
    assert not opted_out(db, ann)


def test_no_inbound_token_configured_refuses_every_request(db, server) -> None:
    ann = add_patient(db, mobile="07700 900123")
    assert post(server, {"from": "+447700900123", "body": "STOP"}, "")[0] == 401
    assert not opted_out(db, ann)


def test_command_line_consent_changes_are_kept_with_who_and_how(cli, db_url: str) -> None:
    assert cli("record", "add", "patient", "first_name=Ann", "last_name=Smith", "mobile=07700 900123").code == 0
    assert cli("--as", "maria", "record", "update", "patient:1", "sms_opt_out=yes").code == 0
    shown = json.loads(cli("record", "show", "patient:1", "--json").out)
    assert (shown["sms_opt_out"], shown["email_opt_out"], shown["marketing_consent"]) == (True, False, False)
    refused = cli("record", "update", "patient:1", "marketing_consent=perhaps")
    assert refused.code == 1
    assert refused.err.strip() == "clinicflow: patient field 'marketing_consent': 'perhaps' is not true or false"
    from app.store import open_database

    db = open_database(db_url)
    try:
        with db.read() as conn:
            entries = [e for e in history_of(conn, "patient:1") if e.action == "patient.opt_out"]
    finally:
        db.dispose()
    assert len(entries) == 1 and entries[0].actor == "maria"
    assert entries[0].detail == {"changes": {"sms_opt_out": [False, True]}, "via": "app or command line"}


def test_stop_all_automations_opts_out_and_cancels_the_patients_runs_in_one_go(db) -> None:
    workflow_id = make_workflow(db, [
        node("start", "trigger.manual", record_type="appointment"),
        node("later", "logic.wait", amount=3, unit="days"),
        node("task", "action.create_task", title="Follow up"),
    ], chain("start", "later", "task"))
    ann, bob = add_patient(db, email="ann@example.org"), add_patient(db, first_name="Bob")
    with db.write() as conn:
        ann_visit = add_record(conn, "appointment", {"patient_id": ann.id, "starts_at": utcnow() + timedelta(days=1)},
                               "t")
        bob_visit = add_record(conn, "appointment", {"patient_id": bob.id, "starts_at": utcnow() + timedelta(days=1)},
                               "t")
    ann_run = start_run(db, workflow_id, record=ann_visit, actor="maria")
    bob_run = start_run(db, workflow_id, record=bob_visit, actor="maria")
    Runtime(db, "rt").run_once()
    stopped = stop_all_automations(db, ann.id, "maria")
    assert stopped.opted_out == ("email", "sms") and stopped.cancelled_runs == (ann_run,)
    preferences = contact_preferences(db, ann.id)
    assert preferences.email_opt_out and preferences.sms_opt_out
    with db.read() as conn:
        statuses = dict(conn.execute(select(runs.c.id, runs.c.status)).all())
        waiting_step = conn.execute(select(steps.c.status).where(steps.c.run_id == ann_run,
                                                                 steps.c.node_id == "later")).scalar()
        cancelled_by = conn.execute(select(runs.c.cancelled_by).where(runs.c.id == ann_run)).scalar()
    assert statuses == {ann_run: "cancelled", bob_run: "waiting"}
    assert waiting_step == "cancelled" and cancelled_by == "maria"
