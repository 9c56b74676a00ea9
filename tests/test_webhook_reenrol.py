"""A webhook naming a record is held to the workflow's `reenrol` like record events and
schedules: a refused start is answered 409 `{"started": false, "reason": ...}` and creates no
run, and of two concurrent requests for the same record (two `runtime --http` processes on
one database) exactly one starts a run."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from typing import Any

from conftest import REPO
from integration_servers import free_port
from sqlalchemy import select, update
from test_webhook import _Address, post, token_of

from app.runtime.control import start_run
from app.runtime.integrations import serve_webhooks
from app.store import Database
from app.store.records import RecordRef, add_record
from app.store.schema import enrolments, runs
from app.store.timeutil import utcnow
from app.store.workflows import create_workflow, publish, set_enabled
from app.workflow import load_workflow


def webhook_workflow(db: Database, reenrol: Any) -> int:
    definition = {"format": "clinicflow.workflow/1", "name": "Lab results arrived", "reenrol": reenrol, "nodes": [
        {"id": "start", "type": "trigger.webhook", "config": {"record_type": "patient"}},
        {"id": "task", "type": "action.create_task", "config": {"title": "Call about lab results"}}],
        "edges": [{"from": "start", "to": "task"}]}
    with db.write() as conn:
        workflow_id = create_workflow(conn, load_workflow(definition), "tester")
        publish(conn, workflow_id, "tester")
        set_enabled(conn, workflow_id, True, "tester")
    return workflow_id


def add_patients(db: Database, count: int) -> list[str]:
    with db.write() as conn:
        return [str(add_record(conn, "patient", {"first_name": "Ann", "last_name": f"Smith{i}"}, "tester"))
                for i in range(count)]


def ref(text: str) -> tuple[str, int]:
    parsed = RecordRef.parse(text)
    return parsed.type, parsed.id


def runs_for(db: Database, workflow_id: int) -> list[tuple[str, int]]:
    with db.read() as conn:
        return [(r.record_type, r.record_id) for r in conn.execute(
            select(runs.c.record_type, runs.c.record_id).where(runs.c.workflow_id == workflow_id))]


def test_a_second_webhook_for_the_same_record_is_409_when_reenrol_is_never(db: Database) -> None:
    workflow_id = webhook_workflow(db, "never")
    token = token_of(db, workflow_id)
    ann, bob = add_patients(db, 2)
    server = serve_webhooks(db, "127.0.0.1", 0)
    try:
        first = post(server, f"/hooks/{workflow_id}", {"record": ann}, token=token)
        again = post(server, f"/hooks/{workflow_id}", {"record": ann, "note": "resent"}, token=token)
        other = post(server, f"/hooks/{workflow_id}", {"record": bob}, token=token)
    finally:
        server.shutdown()
    assert first[0] == 202 and first[1]["started"] is True and isinstance(first[1]["run_id"], int)
    status, answer = again
    assert status == 409
    assert answer["started"] is False and answer["record"] == ann and answer["again_at"] is None
    assert answer["reason"].startswith(f"Patient Ann Smith0 ({ann}) already had a run of this workflow")
    assert "allows one run per patient" in answer["reason"] and answer["error"] == answer["reason"]
    assert other[0] == 202
    assert sorted(runs_for(db, workflow_id)) == sorted([ref(ann), ref(bob)])


def test_after_days_refuses_until_the_days_have_passed(db: Database) -> None:
    workflow_id = webhook_workflow(db, {"after_days": 7})
    token = token_of(db, workflow_id)
    (ann,) = add_patients(db, 1)
    server = serve_webhooks(db, "127.0.0.1", 0)
    try:
        assert post(server, f"/hooks/{workflow_id}", {"record": ann}, token=token)[0] == 202
        status, answer = post(server, f"/hooks/{workflow_id}", {"record": ann}, token=token)
        assert status == 409 and answer["started"] is False
        assert answer["again_at"] is not None and "7 days after the last" in answer["reason"]
        # Eight days later (the enrolment's start moved back), the record may start again.
        with db.write() as conn:
            conn.execute(update(enrolments).values(created_at=utcnow() - timedelta(days=8)))
        assert post(server, f"/hooks/{workflow_id}", {"record": ann}, token=token)[0] == 202
    finally:
        server.shutdown()
    assert len(runs_for(db, workflow_id)) == 2


def test_reenrol_always_lets_every_webhook_start_a_run(db: Database) -> None:
    workflow_id = webhook_workflow(db, "always")
    token = token_of(db, workflow_id)
    (ann,) = add_patients(db, 1)
    server = serve_webhooks(db, "127.0.0.1", 0)
    try:
        answers = [post(server, f"/hooks/{workflow_id}", {"record": ann}, token=token)[0] for _ in range(3)]
    finally:
        server.shutdown()
    assert answers == [202, 202, 202] and len(runs_for(db, workflow_id)) == 3


def test_a_person_may_still_start_a_run_for_a_record_the_webhook_enrolled(db: Database) -> None:
    definition = {"format": "clinicflow.workflow/1", "name": "Call back", "reenrol": "never", "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}}], "edges": []}
    with db.write() as conn:
        workflow_id = create_workflow(conn, load_workflow(definition), "tester")
        publish(conn, workflow_id, "tester")
        set_enabled(conn, workflow_id, True, "tester")
    (ann,) = add_patients(db, 1)
    for _ in range(2):
        start_run(db, workflow_id, record=RecordRef.parse(ann), actor="maria")
    assert len(runs_for(db, workflow_id)) == 2


def _start_runtime(db_url: str, port: int, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "app", "--db", db_url, "runtime", "--name", name,
                             "--http", f"127.0.0.1:{port}"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_serving(port: int, workflow_id: int, token: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:  # a body without a record: 400, which only a serving runtime answers
            post(_Address(port), f"/hooks/{workflow_id}", {}, token=token)
            return
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the runtime did not start serving webhooks"
            time.sleep(0.1)


def test_two_runtimes_answering_concurrent_webhooks_for_one_record_start_exactly_one_run(
        db_url: str, db: Database) -> None:
    workflow_id = webhook_workflow(db, "never")
    token = token_of(db, workflow_id)
    patients = add_patients(db, 6)
    ports = [free_port(), free_port()]
    runtimes = [_start_runtime(db_url, port, f"rt{i}") for i, port in enumerate(ports)]
    answers: dict[str, list[tuple[int, dict[str, Any]]]] = {p: [] for p in patients}
    try:
        for port in ports:
            _wait_serving(port, workflow_id, token)
        for patient in patients:
            barrier = threading.Barrier(2)

            def send(port: int, patient: str = patient, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                answers[patient].append(post(_Address(port), f"/hooks/{workflow_id}", {"record": patient},
                                             token=token))

            threads = [threading.Thread(target=send, args=(port,)) for port in ports]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
    finally:
        for runtime in runtimes:
            runtime.send_signal(signal.SIGTERM)
        errors = [runtime.communicate(timeout=30)[1] for runtime in runtimes]
    assert [runtime.returncode for runtime in runtimes] == [0, 0], errors
    for patient in patients:
        statuses = sorted(status for status, _answer in answers[patient])
        assert statuses == [202, 409], (patient, answers[patient])
        refused = next(answer for status, answer in answers[patient] if status == 409)
        assert refused["started"] is False and refused["record"] == patient
    started = runs_for(db, workflow_id)
    assert sorted(started) == sorted(ref(p) for p in patients)
