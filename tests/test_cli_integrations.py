"""`clinicflow integration set|show|test` and `clinicflow workflow webhook` from the command line."""

from __future__ import annotations

import json

import pytest
from conftest import run_clinicflow
from integration_servers import Answer, Gateway, free_port, smtp_server

from app.store import open_database
from app.store.workflows import create_workflow, publish
from app.workflow import load_workflow

PASSWORD = "cli-Secret-99xy"
TOKEN = "cli-gw-token-4242"

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


def test_set_smtp_stores_settings_and_never_prints_the_password(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("integration", "set", "smtp", "host=mail.clinic.lan", "port=587", "security=starttls",
                 "username=desk", f"password={PASSWORD}", "from=desk@clinic.lan")
    assert result.code == 0
    assert "password: (set)" in result.err
    shown = cli("integration", "show", "smtp", "--json")
    data = json.loads(shown.out)
    assert data["settings"]["host"] == "mail.clinic.lan" and data["settings"]["port"] == 587
    assert data["settings"]["password"] is True
    assert PASSWORD not in result.out + result.err + shown.out + shown.err


@pytest.mark.parametrize(("words", "message"), [
    (["color=blue"], "smtp has no setting 'color'"),
    (["port=twenty-five"], "smtp port: 'twenty-five' is not a port number"),
    (["security=maybe"], "smtp security: 'maybe' is not one of none, starttls, ssl"),
])
def test_set_refuses_bad_keys_and_values_with_one_line_and_stores_nothing(cli, words, message) -> None:  # type: ignore[no-untyped-def]
    result = cli("integration", "set", "smtp", "host=mail.clinic.lan", *words)
    assert result.code == 1
    assert result.err.startswith(f"clinicflow: {message}") and result.err.count("\n") == 1
    shown = json.loads(cli("integration", "show", "smtp", "--json").out)
    assert shown["settings"]["host"] is None


def test_set_needs_smtp_or_sms(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("integration", "set", "fax", "number=1").code == 2


def test_test_smtp_without_settings_fails_with_the_reason(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("integration", "test", "smtp")
    assert result.code == 1
    assert result.err == "clinicflow: Email integration is not connected: no SMTP server configured\n"


def test_test_smtp_logs_in_to_a_real_server(cli) -> None:  # type: ignore[no-untyped-def]
    with smtp_server(users={"desk": PASSWORD}) as (server, handler):
        cli("integration", "set", "smtp", "host=127.0.0.1", f"port={server.port}", "security=none",
            "username=desk", f"password={PASSWORD}", "from=desk@clinic.lan")
        result = cli("integration", "test", "smtp")
    assert result.code == 0
    assert "logged in as desk" in result.out
    assert handler.received == []
    assert "last test: ok" in cli("integration", "show", "smtp").out


def test_failed_smtp_test_is_remembered_for_preflight(cli) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    cli("integration", "set", "smtp", "host=127.0.0.1", f"port={port}", "security=none", f"password={PASSWORD}")
    result = cli("integration", "test", "smtp")
    assert result.code == 1
    assert result.err == f"clinicflow: SMTP server 127.0.0.1:{port} refused the connection\n"
    shown = json.loads(cli("integration", "show", "smtp", "--json").out)
    assert shown["last_test"]["ok"] is False
    assert shown["last_test"]["reason"] == f"SMTP server 127.0.0.1:{port} refused the connection"
    assert PASSWORD not in result.err


def test_test_sms_fails_when_the_gateway_rejects_the_token(cli) -> None:  # type: ignore[no-untyped-def]
    with Gateway([Answer(401, f"unknown token {TOKEN}")]) as gateway:
        cli("integration", "set", "sms", f"url={gateway.url}", f"token={TOKEN}")
        result = cli("integration", "test", "sms")
    assert result.code == 1
    assert "rejected the token (HTTP 401)" in result.err
    assert TOKEN not in result.out + result.err
    assert gateway.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_test_sms_passes_when_the_gateway_answers(cli) -> None:  # type: ignore[no-untyped-def]
    with Gateway([Answer(404, "no such page")]) as gateway:
        cli("integration", "set", "sms", f"url={gateway.url}", f"token={TOKEN}")
        result = cli("integration", "test", "sms")
    assert result.code == 0 and "answered (HTTP 404)" in result.out
    assert gateway.posts == []


def _webhook_workflow(db_url: str, trigger: str = "trigger.webhook") -> int:
    definition = {"format": "clinicflow.workflow/1", "name": "Hook", "nodes": [
        {"id": "start", "type": trigger, "config": {"record_type": "patient"}},
        {"id": "task", "type": "action.create_task", "config": {"title": "Follow up"}}],
        "edges": [{"from": "start", "to": "task"}]}
    db = open_database(db_url)
    try:
        with db.write() as conn:
            workflow_id = create_workflow(conn, load_workflow(definition), "tester")
            publish(conn, workflow_id, "tester")
    finally:
        db.dispose()
    return workflow_id


def test_workflow_webhook_shows_the_token_once_then_says_how_to_rotate(cli, db_url: str) -> None:  # type: ignore[no-untyped-def]
    workflow_id = _webhook_workflow(db_url)
    first = cli("workflow", "webhook", str(workflow_id))
    again = cli("workflow", "webhook", str(workflow_id), "--json")
    assert first.code == 0
    lines = first.out.splitlines()
    assert lines[0] == f"path: /hooks/{workflow_id}"
    token = lines[1].removeprefix("token: ")
    assert len(token) >= 32 and "shown only this once" in first.err
    # Only its hash is stored (DESIGN section 15): it cannot be shown again.
    assert json.loads(again.out) == {"path": f"/hooks/{workflow_id}", "token": None, "token_set": True}
    text = cli("workflow", "webhook", str(workflow_id))
    assert token not in text.out + text.err and "(set" in text.out and "--rotate" in text.err


def test_workflow_webhook_rotate_gives_a_new_token(cli, db_url: str) -> None:  # type: ignore[no-untyped-def]
    workflow_id = _webhook_workflow(db_url)
    old = json.loads(cli("workflow", "webhook", str(workflow_id), "--json").out)["token"]
    rotated = cli("workflow", "webhook", str(workflow_id), "--rotate", "--json")
    new = json.loads(rotated.out)["token"]
    assert old and new and new != old
    assert json.loads(cli("workflow", "webhook", str(workflow_id), "--json").out)["token"] is None


def test_workflow_webhook_refuses_a_workflow_with_another_trigger(cli, db_url: str) -> None:  # type: ignore[no-untyped-def]
    workflow_id = _webhook_workflow(db_url, "trigger.manual")
    result = cli("workflow", "webhook", str(workflow_id))
    assert result.code == 1 and "is not started by a webhook" in result.err


def test_the_real_entry_point_has_the_integration_commands(sqlite_url: str) -> None:
    result = run_clinicflow("--db", sqlite_url, "integration", "set", "sms", "url=http://sms.clinic.lan/send",
                            f"token={TOKEN}", "timeout=abc")
    assert result.code == 1
    assert result.err.strip() == "clinicflow: sms timeout: 'abc' is not a number of seconds"
    assert TOKEN not in result.err
