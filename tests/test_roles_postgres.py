"""Team roles on a real PostgreSQL server with real login roles (DESIGN section 15): each role
may do exactly its column of the table, and the database itself refuses the rest (a raw
psycopg session as well as the command line); the actor cannot be forged; secrets are
unreadable by staff, managers and designers; webhook tokens are shown once and stored hashed."""

from __future__ import annotations

import http.client
import io
import json
import sys
import uuid
from dataclasses import dataclass

import psycopg
import pytest
from pg_logins import PASSWORD
from sqlalchemy import create_engine, make_url, text

from app.api import team
from app.api.history import list_history
from app.cli import main
from app.runtime.integrations.webhook import serve_webhooks
from app.store.database import Database, open_database
from app.store.records import add_record
from app.store.workflows import create_workflow, publish, set_enabled
from app.workflow import load_workflow

pytestmark = pytest.mark.postgres

ROLES = ("staff", "manager", "designer", "admin", "runtime")


@dataclass
class Result:
    code: int
    out: str
    err: str


def clinicflow(capsys: pytest.CaptureFixture[str], url: str, *args: str, stdin: str | None = None) -> Result:
    capsys.readouterr()
    old = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        code = main(["--db", url, *args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.stdin = old
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def manual_workflow(db: Database, *, enabled: bool = True, trigger: str = "trigger.manual") -> int:
    definition = {"format": "clinicflow.workflow/1", "name": "Call back", "nodes": [
        {"id": "start", "type": trigger, "config": {"record_type": "patient"}},
        {"id": "task", "type": "action.create_task", "config": {"title": "Call {{ patient.first_name }}"}}],
        "edges": [{"from": "start", "to": "task"}]}
    with db.write() as conn:
        workflow_id = create_workflow(conn, load_workflow(definition), "setup")
        publish(conn, workflow_id, "setup")
        if enabled:
            set_enabled(conn, workflow_id, True, "setup")
    return workflow_id


def a_patient(db: Database) -> str:
    with db.write() as conn:
        return str(add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith"}, "setup"))


# --- the role table, straight at the database ---------------------------------------------

# One statement per rule of the table; `{w}` a workflow id, `{r}` a run id.
STATEMENTS = {
    "read records": "SELECT * FROM patients",
    "read runs": "SELECT * FROM runs",
    "see which secrets are set": "SELECT key FROM secrets",
    "add a record": ("INSERT INTO patients (first_name, last_name, created_at, updated_at) "
                     "VALUES ('B', 'C', now(), now())"),
    "update a record": "UPDATE patients SET notes = 'called'",
    "start a run": ("INSERT INTO runs (workflow_id, version, status, trigger_kind, triggered_at, updated_at) "
                    "VALUES ({w}, 1, 'running', 'manual', now(), now())"),
    "cancel a run": "UPDATE runs SET status = 'cancelled' WHERE id = {r}",
    "erase a patient": "DELETE FROM patients",
    "enable a workflow": "UPDATE workflows SET enabled = false WHERE id = {w}",
    "edit a workflow": "UPDATE workflows SET name = 'Renamed' WHERE id = {w}",
    "publish a workflow": ("INSERT INTO workflow_versions (workflow_id, number, definition, published_at, "
                           "published_by) SELECT id, 2, draft, now(), 'x' FROM workflows WHERE id = {w}"),
    "delete a workflow": "DELETE FROM workflow_versions WHERE workflow_id = -1",
    "change settings": "INSERT INTO settings (key, value, updated_at) VALUES ('limits', '{{}}', now())",
    "read a secret": "SELECT value FROM secrets",
    "change a secret": "DELETE FROM secrets",
    "add a team member": "SELECT clinicflow_team_add('cf_nobody_' || md5(random()::text), 'clinicflow_staff', 'pw')",
    "claim a run": "UPDATE runs SET lease_owner = 'rt' WHERE id = {r}",
    "write steps": "UPDATE steps SET status = 'failed' WHERE run_id = {r}",
    "announce a runtime": "INSERT INTO runtimes (name, started_at, heartbeat_at) VALUES ('rt', now(), now())",
    "rewrite history": "UPDATE history SET actor = 'someone else'",
    "delete history": "DELETE FROM history",
}
PEOPLE = {"read records", "read runs", "see which secrets are set"}
STAFF = PEOPLE | {"add a record", "update a record", "start a run"}
MANAGER = STAFF | {"cancel a run", "erase a patient", "enable a workflow", "write steps", "claim a run"}
DESIGNER = MANAGER | {"edit a workflow", "publish a workflow", "delete a workflow"}
ADMIN = DESIGNER | {"change settings", "read a secret", "change a secret", "add a team member"}
RUNTIME = {"read records", "read runs", "see which secrets are set", "add a record", "update a record", "start a run",
           "cancel a run", "claim a run", "write steps", "enable a workflow", "read a secret", "announce a runtime"}
ALLOWED = {"staff": STAFF, "manager": MANAGER, "designer": DESIGNER, "admin": ADMIN, "runtime": RUNTIME}


@pytest.mark.parametrize("role", ROLES)
def test_the_database_lets_each_role_do_exactly_its_part(role: str, owner: Database, login) -> None:  # type: ignore[no-untyped-def]
    workflow_id = manual_workflow(owner)
    a_patient(owner)
    with owner.write() as conn:
        run_id = conn.execute(text(
            "INSERT INTO runs (workflow_id, version, status, trigger_kind, triggered_at, updated_at) "
            "VALUES (:w, 1, 'failed', 'manual', now(), now()) RETURNING id"), {"w": workflow_id}).scalar()
    member = login(role)
    allowed, refused = set(), set()
    with psycopg.connect(member.conninfo, autocommit=True) as conn:
        for what, statement in STATEMENTS.items():
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute(statement.format(w=workflow_id, r=run_id))
            except psycopg.errors.InsufficientPrivilege:
                refused.add(what)
            else:
                allowed.add(what)
    assert allowed == ALLOWED[role]
    assert refused == set(STATEMENTS) - ALLOWED[role]


def test_init_creates_the_roles_once_and_again_is_harmless(pg_url: str, owner: Database, capsys) -> None:  # type: ignore[no-untyped-def]
    with owner.read() as conn:
        found = {r[0] for r in conn.execute(text("SELECT rolname FROM pg_roles WHERE rolname LIKE 'clinicflow%'"))}
        inherits = conn.execute(text(
            "SELECT pg_has_role('clinicflow_admin', 'clinicflow_staff', 'MEMBER'), "
            "pg_has_role('clinicflow_runtime', 'clinicflow_staff', 'MEMBER'), "
            "(SELECT rolcanlogin FROM pg_roles WHERE rolname = 'clinicflow_staff')")).one()
    assert set(team.GROUP_ROLES) <= found
    assert tuple(inherits) == (True, False, False)  # admin includes staff; the runtime does not; groups never log in
    for _ in range(2):
        result = clinicflow(capsys, pg_url, "init")
        assert result.code == 0 and "Database ready" in result.err


# --- through the command line ------------------------------------------------------------

def test_staff_add_records_and_start_runs_but_may_not_publish_cancel_or_erase(owner: Database, login, capsys) -> None:  # type: ignore[no-untyped-def]
    workflow_id = manual_workflow(owner)
    patient = a_patient(owner)
    maria = login("staff")
    added = clinicflow(capsys, maria.url, "record", "add", "patient", "first_name=Bo", "last_name=Li")
    assert added.code == 0, added.err
    updated = clinicflow(capsys, maria.url, "record", "update", patient, "mobile=07700 900123")
    assert updated.code == 0, updated.err
    started = clinicflow(capsys, maria.url, "run", "start", str(workflow_id), "--record", patient)
    assert started.code == 0, started.err
    run_id = started.out.strip()
    refused = clinicflow(capsys, maria.url, "workflow", "publish", str(workflow_id))
    assert refused.code == 1
    assert refused.err.strip() == f"clinicflow: {maria.name} (clinicflow_staff) may not publish workflows"
    cancel = clinicflow(capsys, maria.url, "run", "cancel", run_id)
    assert cancel.err.strip() == f"clinicflow: {maria.name} (clinicflow_staff) may not cancel runs"
    enable = clinicflow(capsys, maria.url, "workflow", "disable", str(workflow_id))
    assert enable.err.strip() == f"clinicflow: {maria.name} (clinicflow_staff) may not disable workflows"
    # The history names Maria's login, written by the database.
    pairs = {(h.action, h.actor) for h in list_history(owner) if not h.action.startswith("team.")}
    assert {("record.add", maria.name), ("record.update", maria.name), ("run.start", maria.name)} <= pairs
    assert {actor for _, actor in pairs} == {maria.name, "setup"}


def test_a_manager_enables_and_cancels_but_may_not_publish(owner: Database, login, capsys) -> None:  # type: ignore[no-untyped-def]
    workflow_id = manual_workflow(owner)
    patient = a_patient(owner)
    boss = login("manager")
    assert clinicflow(capsys, boss.url, "workflow", "disable", str(workflow_id)).code == 0
    assert clinicflow(capsys, boss.url, "workflow", "enable", str(workflow_id)).code == 0
    run_id = clinicflow(capsys, boss.url, "run", "start", str(workflow_id), "--record", patient).out.strip()
    cancel = clinicflow(capsys, boss.url, "run", "cancel", run_id)
    assert cancel.code == 0, cancel.err
    refused = clinicflow(capsys, boss.url, "workflow", "publish", str(workflow_id))
    assert refused.err.strip() == f"clinicflow: {boss.name} (clinicflow_manager) may not publish workflows"
    with owner.read() as conn:
        who = conn.execute(text("SELECT started_by, cancelled_by FROM runs WHERE id = :id"), {"id": int(run_id)}).one()
    assert tuple(who) == (boss.name, boss.name)


def test_a_designer_publishes_but_may_not_touch_integrations_or_the_team(owner: Database, login, capsys) -> None:  # type: ignore[no-untyped-def]
    workflow_id = manual_workflow(owner, enabled=False)
    ada = login("designer")
    published = clinicflow(capsys, ada.url, "workflow", "publish", str(workflow_id), "--note", "v2")
    assert published.code == 0, published.err
    refused = clinicflow(capsys, ada.url, "integration", "set", "smtp", "host=mail.clinic.lan")
    assert refused.err.strip() == f"clinicflow: {ada.name} (clinicflow_designer) may not change integrations"
    listed = clinicflow(capsys, ada.url, "team", "list")
    assert listed.code == 1
    assert listed.err.strip() == f"clinicflow: {ada.name} (clinicflow_designer) may not manage the team"
    versions = json.loads(clinicflow(capsys, ada.url, "workflow", "versions", str(workflow_id), "--json").out)
    assert versions[-1]["published_by"] == ada.name or versions[0]["published_by"] == ada.name


def test_an_admin_manages_the_team_and_the_new_login_works(owner: Database, login, capsys) -> None:  # type: ignore[no-untyped-def]
    boss = login("admin")
    name = f"cf_new_{uuid.uuid4().hex[:8]}"
    try:
        added = clinicflow(capsys, boss.url, "team", "add", name, "--role", "staff", "--password-stdin",
                           stdin="s3cret'; DROP TABLE runs; --\n")
        assert added.code == 0, added.err
        listed = json.loads(clinicflow(capsys, boss.url, "team", "list", "--json").out)
        assert {"name": name, "role": "clinicflow_staff", "can_log_in": True} in listed
        assert clinicflow(capsys, boss.url, "team", "set-role", name, "designer").code == 0
        listed = json.loads(clinicflow(capsys, boss.url, "team", "list", "--json").out)
        assert {"name": name, "role": "clinicflow_designer", "can_log_in": True} in listed
        self_removal = clinicflow(capsys, boss.url, "team", "remove", boss.name)
        assert self_removal.code == 1 and "cannot remove yourself" in self_removal.err
        not_member = clinicflow(capsys, boss.url, "team", "remove", "postgres")
        assert not_member.code == 1 and "not a team member" in not_member.err
        assert clinicflow(capsys, boss.url, "team", "remove", name).code == 0
        history = list_history(owner, subject=f"member:{name}")
        assert [h.action for h in history] == ["team.remove", "team.set_role", "team.add"]
        assert {h.actor for h in history} == {boss.name}
    finally:
        with owner.write() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
    with owner.read() as conn:  # the quote in the password did nothing
        assert conn.execute(text("SELECT to_regclass('runs')")).scalar() is not None


def test_as_is_refused_for_a_team_member_on_postgresql(owner: Database, login, capsys) -> None:  # type: ignore[no-untyped-def]
    maria = login("staff")
    result = clinicflow(capsys, maria.url, "--as", "dr_jones", "record", "add", "patient", "first_name=A",
                        "last_name=B")
    assert result.code == 1
    assert result.err.strip() == ("clinicflow: --as cannot be used on PostgreSQL: the history records the login "
                                  f"you connected as ({maria.name})")
    with owner.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM patients")).scalar() == 0


def test_team_commands_need_postgresql(sqlite_url: str, capsys) -> None:  # type: ignore[no-untyped-def]
    result = clinicflow(capsys, sqlite_url, "team", "list")
    assert result.code == 1
    assert result.err.strip() == f"clinicflow: {team.TEAMS_NEED_POSTGRESQL}"


# --- the actor cannot be forged ----------------------------------------------------------

def test_an_insert_naming_another_actor_is_overwritten_with_the_login(owner: Database, login) -> None:  # type: ignore[no-untyped-def]
    workflow_id = manual_workflow(owner)
    maria = login("staff")
    with psycopg.connect(maria.conninfo) as conn:
        forged = conn.execute("INSERT INTO history (at, actor, action, subject) VALUES (now(), 'dr_jones', "
                              "'workflow.publish', 'workflow:1') RETURNING actor").fetchone()
        defaulted = conn.execute("INSERT INTO history (at, action, subject) VALUES (now(), 'record.add', 'patient:1') "
                                 "RETURNING actor").fetchone()
        run = conn.execute("INSERT INTO runs (workflow_id, version, status, trigger_kind, started_by, triggered_at, "
                           "updated_at) VALUES (%s, 1, 'running', 'manual', 'dr_jones', now(), now()) "
                           "RETURNING started_by", (workflow_id,)).fetchone()
        event = conn.execute("INSERT INTO record_events (record_type, record_id, event, actor, occurred_at, "
                             "dispatched) VALUES ('patient', 1, 'updated', 'dr_jones', now(), false) "
                             "RETURNING actor").fetchone()
    assert forged == (maria.name,) and defaulted == (maria.name,)
    assert run == (maria.name,) and event == (maria.name,)
    with owner.read() as conn:  # the owner (setup, tests) may still name the actor (`--as`)
        assert "dr_jones" not in {r[0] for r in conn.execute(text("SELECT actor FROM history"))}


def test_the_owner_may_still_name_the_actor(pg_url: str, owner: Database, capsys) -> None:  # type: ignore[no-untyped-def]
    result = clinicflow(capsys, pg_url, "--as", "reception", "record", "add", "patient", "first_name=A", "last_name=B")
    assert result.code == 0
    with owner.read() as conn:
        assert conn.execute(text("SELECT actor FROM history WHERE action = 'record.add'")).scalar() == "reception"


# --- secrets -----------------------------------------------------------------------------

@pytest.mark.parametrize("role", ("staff", "manager", "designer"))
def test_secrets_are_unreadable_except_by_admins_and_the_runtime(role: str, owner: Database, login, capsys) -> None:  # type: ignore[no-untyped-def]
    admin = login("admin")
    secret = "hunter2-smtp"
    set_it = clinicflow(capsys, admin.url, "integration", "set", "smtp", "host=mail.clinic.lan", f"password={secret}")
    assert set_it.code == 0, set_it.err
    member = login(role)
    shown = clinicflow(capsys, member.url, "integration", "show", "smtp")
    assert shown.code == 0, shown.err
    assert "password: (set)" in shown.out and "host: mail.clinic.lan" in shown.out and secret not in shown.out
    assert json.loads(clinicflow(capsys, member.url, "integration", "show", "smtp", "--json").out)["settings"][
        "password"] is True
    with psycopg.connect(member.conninfo) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT value FROM secrets")
        conn.rollback()
        assert secret not in json.dumps(conn.execute("SELECT value FROM settings").fetchall())
    runtime = login("runtime")
    runtime_db = open_database(runtime.url)
    try:
        from app.runtime.integrations.settings import load_smtp

        with runtime_db.read() as conn:
            smtp = load_smtp(conn)
        assert smtp is not None and smtp.password == secret
    finally:
        runtime_db.dispose()


# --- webhook tokens ----------------------------------------------------------------------

def test_a_webhook_answers_202_with_a_token_shown_once_that_is_in_no_table(pg_url: str, owner: Database, login,
                                                                           capsys) -> None:  # type: ignore[no-untyped-def]
    workflow_id = manual_workflow(owner, trigger="trigger.webhook")
    patient = a_patient(owner)
    ada = login("designer")
    shown = clinicflow(capsys, ada.url, "workflow", "webhook", str(workflow_id), "--json")
    assert shown.code == 0, shown.err
    token = json.loads(shown.out)["token"]
    again = json.loads(clinicflow(capsys, ada.url, "workflow", "webhook", str(workflow_id), "--json").out)
    assert again["token"] is None and again["token_set"] is True
    runtime_db = open_database(login("runtime").url)
    server = serve_webhooks(runtime_db, "127.0.0.1", 0)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        connection.request("POST", f"/hooks/{workflow_id}", json.dumps({"record": patient}),
                           {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        answer = connection.getresponse()
        assert answer.status == 202, answer.read()
        connection.close()
    finally:
        server.shutdown()
        runtime_db.dispose()
    with owner.read() as conn:
        query = text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        tables = [r[0] for r in conn.execute(query)]
        for table in tables:
            dump = conn.execute(text(f'SELECT coalesce(string_agg(t::text, \'\n\'), \'\') FROM "{table}" t')).scalar()
            assert token not in dump, table


def test_the_runtime_login_executes_a_run_a_member_of_staff_started(owner: Database, login, capsys) -> None:  # type: ignore[no-untyped-def]
    workflow_id = manual_workflow(owner)
    patient = a_patient(owner)
    maria, runtime = login("staff"), login("runtime")
    run_id = clinicflow(capsys, maria.url, "run", "start", str(workflow_id), "--record", patient).out.strip()
    done = clinicflow(capsys, runtime.url, "runtime", "--once", "--name", "server")
    assert done.code == 0, done.err
    shown = json.loads(clinicflow(capsys, maria.url, "run", "show", run_id, "--json").out)
    assert shown["status"] == "completed", shown
    tasks = json.loads(clinicflow(capsys, maria.url, "record", "list", "task", "--json").out)
    assert [t["title"] for t in tasks] == ["Call Ann"]
    # ... but the runtime may not do what people do.
    refused = clinicflow(capsys, runtime.url, "workflow", "publish", str(workflow_id))
    assert refused.err.strip() == f"clinicflow: {runtime.name} (clinicflow_runtime) may not publish workflows"


def test_staff_may_insert_only_a_manual_run_and_the_database_writes_its_start(owner: Database, login) -> None:  # type: ignore[no-untyped-def]
    manual = manual_workflow(owner)
    hook = manual_workflow(owner, trigger="trigger.webhook")
    maria = login("staff")
    columns = "workflow_id, version, status, trigger_kind, state, triggered_at, updated_at"
    with psycopg.connect(maria.conninfo) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only a manual run"):
            conn.execute(f"INSERT INTO runs ({columns}) VALUES (%s, 1, 'running', 'webhook', '{{}}', now(), now())",
                         (hook,))
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only a manual run"):
            conn.execute(f"INSERT INTO runs ({columns}) VALUES (%s, 7, 'running', 'manual', '{{}}', now(), now())",
                         (manual,))
        conn.rollback()
        # A crafted cursor (skip straight to the task) is replaced by the workflow's start.
        row = conn.execute(f"INSERT INTO runs ({columns}) VALUES (%s, 1, 'completed', 'manual', "
                           "'{\"pending\": [\"task\"], \"seq\": 5, \"actions\": 0}', now(), now()) "
                           "RETURNING status, state", (manual,)).fetchone()
    assert row == ("running", {"pending": ["start"], "seq": 0, "actions": 0})


def test_a_refusal_without_its_use_case_is_still_one_line(owner: Database, login) -> None:  # type: ignore[no-untyped-def]
    from app.api import refusal_message
    from app.api import workflows as api_workflows

    workflow_id = manual_workflow(owner)
    maria = open_database(login("staff").url)
    try:
        with pytest.raises(Exception) as refused:
            api_workflows.publish(maria, workflow_id, "maria")
        assert refusal_message(refused.value) == "the database refused: permission denied for table workflows"
        assert team.is_privilege_refusal(refused.value)
        member = team.current_member(maria)
        assert member.role == "clinicflow_staff" and not member.can("workflow.publish") and member.can("run.start")
        assert team.why_not(member, "workflow.publish") == f"{member.name} (clinicflow_staff) may not publish workflows"
    finally:
        maria.dispose()


def test_the_readme_setup_an_owner_with_createrole_an_admin_then_staff(pg_url: str, capsys) -> None:  # type: ignore[no-untyped-def]
    """The few commands of the README: a non-superuser owner who may create roles runs
    `init` and adds the first admin; the admin adds a member of staff, who can work."""
    suffix = uuid.uuid4().hex[:8]
    owner_name, admin_name, staff_name = f"cf_owner_{suffix}", f"cf_boss_{suffix}", f"cf_maria_{suffix}"
    schema = f"t_own_{suffix}"
    root = create_engine(make_url(pg_url).set(query={}))

    def url_of(user: str) -> str:
        return make_url(pg_url).set(username=user, password=PASSWORD, query={"options": f"-csearch_path={schema}"}) \
            .render_as_string(hide_password=False)

    with root.begin() as conn:
        conn.execute(text(f"CREATE ROLE {owner_name} LOGIN CREATEROLE PASSWORD '{PASSWORD}'"))
        conn.execute(text(f"CREATE SCHEMA {schema} AUTHORIZATION {owner_name}"))
    try:
        for _ in range(2):
            ready = clinicflow(capsys, url_of(owner_name), "init")
            assert ready.code == 0, ready.err
        added = clinicflow(capsys, url_of(owner_name), "team", "add", admin_name, "--role", "admin",
                           "--password-stdin", stdin=PASSWORD + "\n")
        assert added.code == 0, added.err
        added = clinicflow(capsys, url_of(admin_name), "team", "add", staff_name, "--role", "staff",
                           "--password-stdin", stdin=PASSWORD + "\n")
        assert added.code == 0, added.err
        work = clinicflow(capsys, url_of(staff_name), "record", "add", "patient", "first_name=Ann", "last_name=Lee")
        assert work.code == 0, work.err
        listed = json.loads(clinicflow(capsys, url_of(admin_name), "team", "list", "--json").out)
        assert {(m["name"], m["role"]) for m in listed} >= {(admin_name, "clinicflow_admin"),
                                                            (staff_name, "clinicflow_staff")}
    finally:
        with root.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            for name in (staff_name, admin_name, owner_name):
                if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first():
                    conn.execute(text(f"REASSIGN OWNED BY {name} TO CURRENT_USER"))
                    conn.execute(text(f"DROP OWNED BY {name}"))
                    conn.execute(text(f"DROP ROLE {name}"))
        root.dispose()
