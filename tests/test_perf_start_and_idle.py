"""The cheaper start and idle paths keep their promises: a start uses the workflow as it is
published now (the parsed-version cache never serves a deleted workflow's definition), an
idle runtime takes no write lock on SQLite (another program holding it does not stall it),
starts arriving together share a commit on SQLite (each refused alone, none answered before
its commit), and a start is one statement on PostgreSQL with the same checks and words."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from runtime_workflows import add_patient, chain, make_workflow, node, wait_until
from sqlalchemy import event, func, insert, select
from sqlalchemy.exc import IntegrityError

from app.runtime.control import start_run
from app.runtime.engine import Engine
from app.store.errors import InvalidRecord, NotFound, WrongState
from app.store.records import RecordRef
from app.store.schema import history, runs
from app.store.settings import set_default_limits
from app.store.timeutil import utcnow
from app.store.workflows import delete_workflow, live_version, set_enabled


def test_a_start_uses_the_new_workflow_when_a_deleted_one_left_its_id_to_it(db) -> None:
    first = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                               node("task", "action.create_task", title="a")], chain("start", "task"),
                          name="For a patient")
    with db.read() as conn:
        assert live_version(conn, first).workflow is not None  # parsed and cached
    with db.write() as conn:
        assert delete_workflow(conn, first, "tester") == "deleted"
    second = make_workflow(db, [node("start", "trigger.manual", record_type="appointment"),
                                node("task", "action.create_task", title="b")], chain("start", "task"),
                           name="For an appointment")
    if second != first:
        pytest.skip("the database did not reuse the id (PostgreSQL sequences never do)")
    # The new workflow runs for an appointment: a start for a patient is refused, not run as the old one.
    with pytest.raises(InvalidRecord, match="runs for an appointment, not for a patient"):
        start_run(db, second, record=add_patient(db), actor="tester")


def test_an_idle_runtime_is_not_held_up_by_another_program_holding_the_write_lock(db_url: str, db) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite's one write lock")
    make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                       node("task", "action.create_task", title="a")], chain("start", "task"))
    engine = Engine(db, "idle")
    other = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        # An idle poll is a read: it neither waits for the lock (30 s, then "database is
        # locked") nor reports the database as waiting.
        for _ in range(3):
            assert engine.process_batch().runs == 0
        assert not engine.writes.waiting
    finally:
        other.execute("ROLLBACK")
        other.close()


# --- starts arriving together share a commit (SQLite) -------------------------------------

def _start_in_thread(db, workflow_id: int, record, outcomes: dict, key: str) -> threading.Thread:
    def start() -> None:
        try:
            outcomes[key] = start_run(db, workflow_id, record=record, actor="tester")
        except Exception as exc:  # the test looks at which error each caller got
            outcomes[key] = exc

    thread = threading.Thread(target=start)
    thread.start()
    return thread


def _commits(db) -> list[int]:
    counted = [0]
    event.listen(db.engine, "commit", lambda _conn: counted.__setitem__(0, counted[0] + 1))
    return counted


def test_starts_behind_a_write_share_its_commit_and_a_bad_one_fails_only_its_caller(db) -> None:
    if not db.is_sqlite:
        pytest.skip("group commit: SQLite's one writer")
    workflow_id = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                                     node("task", "action.create_task", title="a")], chain("start", "task"))
    off = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                             node("task", "action.create_task", title="b")], chain("start", "task"), name="Off")
    with db.write() as conn:
        set_enabled(conn, off, False, "tester")
    good = [add_patient(db) for _ in range(3)]
    commits = _commits(db)
    outcomes: dict[str, object] = {}
    with db.write() as conn:  # as the runtime's batch holds the write turn
        threads = [_start_in_thread(db, workflow_id, ref, outcomes, f"good{i}") for i, ref in enumerate(good)]
        threads.append(_start_in_thread(db, workflow_id, RecordRef("patient", 999), outcomes, "missing"))
        threads.append(_start_in_thread(db, off, good[0], outcomes, "disabled"))
        wait_until(lambda: len(db._queued) == 5, what="five queued starts")
        assert outcomes == {}  # nobody returns before the commit that holds its run
        conn.execute(select(1))
    for thread in threads:
        thread.join(10)
    assert commits[0] == 1  # the holder's transaction carried all five
    ids = [outcomes[f"good{i}"] for i in range(3)]
    assert all(isinstance(run_id, int) for run_id in ids), outcomes
    assert isinstance(outcomes["missing"], NotFound) and str(outcomes["missing"]) == "there is no patient:999"
    assert isinstance(outcomes["disabled"], WrongState)
    assert str(outcomes["disabled"]) == f"workflow {off} (Off) is disabled; enable it before starting runs"
    with db.read() as conn:
        assert sorted(conn.execute(select(runs.c.id)).scalars()) == sorted(ids)
        started = conn.execute(select(history.c.subject).where(history.c.action == "run.start")).scalars().all()
    assert sorted(started) == sorted(f"run:{run_id}" for run_id in ids)


def test_starts_queued_behind_a_write_that_fails_are_done_by_the_next_writer(db) -> None:
    if not db.is_sqlite:
        pytest.skip("group commit: SQLite's one writer")
    workflow_id = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                                     node("task", "action.create_task", title="a")], chain("start", "task"))
    refs = [add_patient(db) for _ in range(2)]
    outcomes: dict[str, object] = {}
    with pytest.raises(RuntimeError), db.write():
        threads = [_start_in_thread(db, workflow_id, ref, outcomes, f"s{i}") for i, ref in enumerate(refs)]
        wait_until(lambda: len(db._queued) == 2, what="two queued starts")
        raise RuntimeError("the holder fails: its transaction rolls back before the queue is done")
    for thread in threads:
        thread.join(10)
    assert all(isinstance(outcomes[key], int) for key in ("s0", "s1")), outcomes
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(runs)).scalar_one() == 2


def test_a_failed_commit_fails_every_start_it_held_and_keeps_none(db) -> None:
    if not db.is_sqlite:
        pytest.skip("group commit: SQLite's one writer")
    workflow_id = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                                     node("task", "action.create_task", title="a")], chain("start", "task"))
    refs = [add_patient(db) for _ in range(2)]
    outcomes: dict[str, object] = {}
    with pytest.raises(IntegrityError), db.write() as conn:
        threads = [_start_in_thread(db, workflow_id, ref, outcomes, f"s{i}") for i, ref in enumerate(refs)]
        wait_until(lambda: len(db._queued) == 2, what="two queued starts")
        # A foreign key checked at COMMIT: the commit that holds both starts fails.
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        conn.execute(insert(runs).values(workflow_id=99999, version=1, status="running", trigger_kind="manual",
                                         triggered_at=utcnow(), updated_at=utcnow()))
    for thread in threads:
        thread.join(10)
    assert all(isinstance(outcomes[key], IntegrityError) for key in ("s0", "s1")), outcomes
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(runs)).scalar_one() == 0


# --- one statement per start (PostgreSQL) -------------------------------------------------

def test_a_start_is_one_statement_on_postgresql_and_a_stale_guess_falls_back_with_the_same_words(db) -> None:
    if not db.is_postgresql:
        pytest.skip("the one-statement start is PostgreSQL's")
    workflow_id = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                                     node("task", "action.create_task", title="a")], chain("start", "task"),
                                name="Calls")
    refs = [add_patient(db) for _ in range(3)]
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_rest: statements.append(statement.split()[0]))
    first = start_run(db, workflow_id, record=refs[0], actor="tester")
    statements.clear()
    second = start_run(db, workflow_id, record=refs[1], actor="tester")
    assert statements == ["WITH"]
    with db.read() as conn:
        rows = {r.id: r for r in conn.execute(select(runs).where(runs.c.id.in_([first, second])))}
        subjects = conn.execute(select(history.c.subject, history.c.actor, history.c.detail)
                                .where(history.c.action == "run.start").order_by(history.c.id)).all()
    assert rows[second].version == rows[first].version and rows[second].state == rows[first].state
    assert rows[second].deadline_at - rows[second].triggered_at == rows[first].deadline_at - rows[first].triggered_at
    assert [s for s, _, _ in subjects] == [f"run:{first}", f"run:{second}"]
    assert subjects[1][2] == {"workflow_id": workflow_id, "version": 1, "record": str(refs[1]), "trigger": "manual"}
    # A missing record, a changed default limit, a disabled workflow: read afresh, same words.
    with pytest.raises(NotFound, match=r"^there is no patient:999999$"):
        start_run(db, workflow_id, record=RecordRef("patient", 999999), actor="tester")
    with db.write() as conn:
        set_default_limits(conn, {"max_runtime_seconds": 600})
    third = start_run(db, workflow_id, record=refs[2], actor="tester")
    with db.read() as conn:
        row = conn.execute(select(runs).where(runs.c.id == third)).one()
    assert (row.deadline_at - row.triggered_at).total_seconds() == 600
    with db.write() as conn:
        set_enabled(conn, workflow_id, False, "tester")
    with pytest.raises(WrongState, match=r"^workflow \d+ \(Calls\) is disabled; enable it before starting runs$"):
        start_run(db, workflow_id, record=refs[2], actor="tester")
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(runs)).scalar_one() == 3
