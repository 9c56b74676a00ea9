"""The webhook trigger endpoint (`POST /hooks/<workflow_id>`) on a real HTTP server: tokens,
body rules, unknown and disabled workflows, records, and the durable 202."""

from __future__ import annotations

import http.client
import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import REPO
from integration_servers import free_port
from runtime_workflows import task_titles
from sqlalchemy import select

from app.runtime.integrations import serve_webhooks
from app.runtime.integrations.webhook import MAX_BODY, WebhookServer
from app.store import Database
from app.store.records import add_record
from app.store.schema import runs
from app.store.workflows import create_workflow, publish, set_enabled, webhook_token
from app.workflow import load_workflow


def make_workflow(db: Database, trigger: dict[str, Any] | None = None, *, enabled: bool = True) -> int:
    trigger = trigger or {"type": "trigger.webhook", "config": {"record_type": "patient"}}
    definition = {"format": "clinicflow.workflow/1", "name": "Lab results arrived", "nodes": [
        {"id": "start", **trigger},
        {"id": "task", "type": "action.create_task", "config": {"title": "Call about lab results"}}],
        "edges": [{"from": "start", "to": "task"}]}
    with db.write() as conn:
        workflow_id = create_workflow(conn, load_workflow(definition), "tester")
        publish(conn, workflow_id, "tester")
        if enabled:
            set_enabled(conn, workflow_id, True, "tester")
    return workflow_id


def token_of(db: Database, workflow_id: int) -> str:
    with db.write() as conn:
        return webhook_token(conn, workflow_id)


@pytest.fixture
def server(db: Database) -> Iterator[WebhookServer]:
    webhooks = serve_webhooks(db, "127.0.0.1", 0)
    yield webhooks
    webhooks.shutdown()


@pytest.fixture
def patient(db: Database) -> str:
    with db.write() as conn:
        return str(add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith"}, "tester"))


def post(server: Any, path: str, body: bytes | dict[str, Any] | list[Any] | str,
         token: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request("POST", path, body=data, headers=all_headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def run_count(db: Database) -> int:
    with db.read() as conn:
        return len(conn.execute(select(runs.c.id)).all())


def test_a_missing_token_is_401(db: Database, server: WebhookServer, patient: str) -> None:
    workflow_id = make_workflow(db)
    status, answer = post(server, f"/hooks/{workflow_id}", {"record": patient})
    assert status == 401 and "token" in answer["error"]
    assert run_count(db) == 0


def test_a_wrong_token_is_401_and_never_shown(db: Database, server: WebhookServer, patient: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    workflow_id = make_workflow(db)
    token = token_of(db, workflow_id)
    status, answer = post(server, f"/hooks/{workflow_id}", {"record": patient}, token=token[:-1] + "x")
    assert status == 401
    assert token not in json.dumps(answer) and token not in caplog.text
    assert run_count(db) == 0


def test_a_rotated_token_replaces_the_old_one(db: Database, server: WebhookServer, patient: str) -> None:
    workflow_id = make_workflow(db)
    old = token_of(db, workflow_id)
    with db.write() as conn:
        new = webhook_token(conn, workflow_id, rotate=True, actor="tester")
    assert new != old
    status, _ = post(server, f"/hooks/{workflow_id}", {"record": patient}, token=old)
    assert status == 401


def test_an_unknown_workflow_is_404(db: Database, server: WebhookServer) -> None:
    status, answer = post(server, "/hooks/999", {}, token="anything")
    assert status == 404 and "999" in answer["error"]


def test_a_disabled_workflow_is_404(db: Database, server: WebhookServer, patient: str) -> None:
    workflow_id = make_workflow(db)
    token = token_of(db, workflow_id)
    with db.write() as conn:
        set_enabled(conn, workflow_id, False, "tester")
    status, _ = post(server, f"/hooks/{workflow_id}", {"record": patient}, token=token)
    assert status == 404
    assert run_count(db) == 0


def test_a_workflow_not_started_by_webhook_is_404(db: Database, server: WebhookServer, patient: str) -> None:
    workflow_id = make_workflow(db, {"type": "trigger.manual", "config": {"record_type": "patient"}})
    status, _ = post(server, f"/hooks/{workflow_id}", {"record": patient}, token="whatever")
    assert status == 404


def test_other_paths_are_404(db: Database, server: WebhookServer) -> None:
    status, _ = post(server, "/hooks/abc", {})
    assert status == 404


def test_a_body_over_one_mebibyte_is_413(db: Database, server: WebhookServer) -> None:
    workflow_id = make_workflow(db)
    token = token_of(db, workflow_id)
    big = json.dumps({"note": "x" * MAX_BODY}).encode()
    status, answer = post(server, f"/hooks/{workflow_id}", big, token=token)
    assert status == 413 and "1 MiB" in answer["error"]
    assert run_count(db) == 0


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"not json", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_400(db: Database, server: WebhookServer, body: bytes) -> None:
    workflow_id = make_workflow(db)
    status, answer = post(server, f"/hooks/{workflow_id}", body, token=token_of(db, workflow_id))
    assert status == 400 and "body" in answer["error"]
    assert run_count(db) == 0


def test_a_record_that_does_not_exist_is_400(db: Database, server: WebhookServer) -> None:
    workflow_id = make_workflow(db)
    status, answer = post(server, f"/hooks/{workflow_id}", {"record": "patient:4040"}, token=token_of(db, workflow_id))
    assert status == 400 and answer["error"] == "\"record\": there is no patient:4040"


def test_a_record_of_another_type_is_400(db: Database, server: WebhookServer, patient: str) -> None:
    workflow_id = make_workflow(db)
    status, answer = post(server, f"/hooks/{workflow_id}", {"record": "recall:1"}, token=token_of(db, workflow_id))
    assert status == 400 and "runs for a patient, not a recall" in answer["error"]


def test_a_missing_record_for_a_record_workflow_is_400(db: Database, server: WebhookServer) -> None:
    workflow_id = make_workflow(db)
    status, answer = post(server, f"/hooks/{workflow_id}", {"lab": "ok"}, token=token_of(db, workflow_id))
    assert status == 400 and "patient:12" in answer["error"]


def test_a_good_request_gets_202_with_a_run_that_already_exists(db: Database, server: WebhookServer,
                                                               patient: str) -> None:
    workflow_id = make_workflow(db)
    body = {"record": patient, "lab": {"panel": "HbA1c", "result": "6.1"}}
    status, answer = post(server, f"/hooks/{workflow_id}", body, token=token_of(db, workflow_id))
    assert status == 202
    with db.read() as conn:
        row = conn.execute(select(runs).where(runs.c.id == answer["run_id"])).mappings().one()
    assert row["workflow_id"] == workflow_id and row["trigger_kind"] == "webhook"
    assert f"{row['record_type']}:{row['record_id']}" == patient
    assert row["trigger_data"] == body  # the run's payload.* in templates


def test_a_workflow_without_record_type_takes_any_object(db: Database, server: WebhookServer) -> None:
    workflow_id = make_workflow(db, {"type": "trigger.webhook", "config": {}})
    status, answer = post(server, f"/hooks/{workflow_id}", {"event": "ping"}, token=token_of(db, workflow_id))
    assert status == 202 and isinstance(answer["run_id"], int)
    assert run_count(db) == 1


def test_shutdown_stops_serving(db: Database) -> None:
    webhooks = serve_webhooks(db, "127.0.0.1", 0)
    port = webhooks.server_address[1]
    webhooks.shutdown()
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()



def test_the_headless_runtime_serves_webhooks_and_runs_what_they_start(db_url: str, db: Database,
                                                                       patient: str) -> None:
    workflow_id = make_workflow(db)
    token = token_of(db, workflow_id)
    port = free_port()
    runtime = subprocess.Popen([sys.executable, "-m", "app", "--db", db_url, "runtime", "--http", f"127.0.0.1:{port}"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _answer = post(_Address(port), f"/hooks/{workflow_id}", {"record": patient}, token=token)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "the runtime did not start serving webhooks"
                time.sleep(0.1)
        assert status == 202
        while task_titles(db) != ["Call about lab results"]:
            assert time.monotonic() < deadline, "the run started by the webhook did not complete"
            time.sleep(0.1)
    finally:
        runtime.send_signal(signal.SIGTERM)
        _out, err = runtime.communicate(timeout=30)
    assert runtime.returncode == 0, err
    assert token not in err


class _Address:
    """Just enough of a server for `post` to reach another process's endpoint."""

    def __init__(self, port: int) -> None:
        self.server_address = ("127.0.0.1", port)


@pytest.mark.parametrize("body", [
    b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}",
    b'{"a": ' + b'{"b": ' * 5000 + b"1" + b"}" * 5000 + b"}",
])
def test_a_deeply_nested_body_is_400_without_a_logged_traceback(db: Database, server: WebhookServer, body: bytes,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    workflow_id = make_workflow(db, {"type": "trigger.webhook", "config": {}})
    status, answer = post(server, f"/hooks/{workflow_id}", body, token=token_of(db, workflow_id))
    assert status == 400 and answer["error"] == "the body nests deeper than 32 levels"
    assert run_count(db) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("body, words", [
    (b'{"value": NaN}', "NaN"), (b'{"value": Infinity}', "Infinity"), (b'{"v": [-Infinity]}', "-Infinity"),
    (b'{"value": 1e400}', "too large"), (b'{"note": "a\\u0000b"}', "\\u0000"), (b'{"a\\u0000": 1}', "\\u0000"),
])
def test_nan_infinity_and_nul_are_400_on_every_database(db: Database, server: WebhookServer, body: bytes,
                                                        words: str) -> None:
    workflow_id = make_workflow(db, {"type": "trigger.webhook", "config": {}})
    status, answer = post(server, f"/hooks/{workflow_id}", body, token=token_of(db, workflow_id))
    assert status == 400 and words in answer["error"]
    assert run_count(db) == 0


def test_a_slow_or_idle_connection_is_closed(db: Database) -> None:
    import socket

    webhooks = serve_webhooks(db, "127.0.0.1", 0, request_seconds=0.5)
    try:
        port = webhooks.server_address[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
            assert idle.recv(1024) == b""  # closed by the server, not by our timeout
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(b"POST /hooks/1 HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            assert slow.recv(1024) == b""
        workflow_id = make_workflow(db, {"type": "trigger.webhook", "config": {}})
        with socket.create_connection(("127.0.0.1", port), timeout=10) as partial:
            partial.sendall(f"POST /hooks/{workflow_id} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode())
            answer = b""
            while chunk := partial.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive" in answer
        # Still serving afterwards.
        status, _ = post(webhooks, f"/hooks/{workflow_id}", {}, token=token_of(db, workflow_id))
        assert status == 202
    finally:
        webhooks.shutdown()
