"""The connected member's role in the app (DESIGN section 15), against the real PostgreSQL server
with real login roles made and dropped per test: what a role may not do is disabled with a
tooltip saying why; a refusal by the database anyway is the same one line; Settings → Team for
admins (list, add with a password, change a role, remove). On SQLite everything is allowed."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from PySide6.QtCore import Qt, QThreadPool
from runtime_workflows import add_patient, chain, make_workflow, node, status
from sqlalchemy import create_engine, make_url, text

from app.api import team
from app.runtime import Runtime
from app.runtime.control import start_run
from app.store import open_database
from app.store.database import Database

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
WAIT = 20000
PASSWORD = "correct horse battery"


@pytest.fixture
def owner(pg_url: str) -> Iterator[Database]:
    db = open_database(pg_url)
    yield db
    db.dispose()


def _drop_roles(pg_url: str, names: list[str]) -> None:
    engine = create_engine(make_url(pg_url).set(query={}))
    with engine.begin() as conn:
        for name in names:
            if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first():
                quoted = conn.dialect.identifier_preparer.quote_identifier(name)
                conn.execute(text(f"REASSIGN OWNED BY {quoted} TO CURRENT_USER"))
                conn.execute(text(f"DROP OWNED BY {quoted}"))
                conn.execute(text(f"DROP ROLE {quoted}"))
    engine.dispose()


@pytest.fixture
def made_roles(pg_url: str) -> Iterator[list[str]]:
    """Names of login roles a test made (also through the app); all dropped afterwards."""
    names: list[str] = []
    yield names
    _drop_roles(pg_url, names)


@pytest.fixture
def login_url(pg_url: str, owner: Database, made_roles: list[str]) -> Callable[[str], tuple[str, str]]:
    """A real login role in a clinicflow role; returns (its name, the practice URL as it)."""
    def make(role: str) -> tuple[str, str]:
        name = f"cf_{role}_{uuid.uuid4().hex[:8]}"
        team.add_member(owner, name, role, PASSWORD)
        made_roles.append(name)
        return name, make_url(pg_url).set(username=name, password=PASSWORD).render_as_string(hide_password=False)

    return make


@pytest.fixture
def open_window(qtbot: Any) -> Iterator[Callable[[str], Any]]:
    from app.views import create_main_window
    from app.views.main_window import app_settings

    windows: list[Any] = []

    def make(url: str) -> Any:
        app_settings().clear()
        window = create_main_window(url, start_runtime=False, actor="Ann Tester")
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: window.gate.member is not None, timeout=WAIT)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
    QThreadPool.globalInstance().waitForDone(WAIT)
    for window in windows:
        window.db.dispose()


def failing_workflow(db: Database) -> tuple[int, int]:
    workflow_id = make_workflow(db, [node("start", "trigger.manual", record_type="patient"),
                                     node("text", "action.send_sms", body="Hi")], chain("start", "text"),
                                name="Recall texts")
    run_id = start_run(db, workflow_id, record=add_patient(db), actor="setup")
    Runtime(db, "rt").run_once()
    assert status(db, run_id) == "failed"
    return workflow_id, run_id


def show_failed_run(qtbot: Any, window: Any, run_id: int) -> Any:
    window.show_run(run_id)
    inspector = window.inspector
    qtbot.waitUntil(lambda: inspector.view is not None and inspector.view.run["status"] == "failed", timeout=WAIT)
    return inspector


@pytest.mark.postgres
def test_staff_see_what_they_may_not_do_disabled_with_the_reason(
        qtbot: Any, owner: Database, login_url: Any, open_window: Any) -> None:
    workflow_id, run_id = failing_workflow(owner)
    name, url = login_url("staff")
    window = open_window(url)
    assert window.gate.member.role == "clinicflow_staff" and window.actor() == name
    inspector = show_failed_run(qtbot, window, run_id)
    # The run is failed (the viewer would offer Retry), but a member of staff may not retry.
    for button, words in ((inspector.retry_run, "retry runs"), (inspector.retry_step, "retry steps"),
                          (inspector.run_actions.retry_latest, "retry runs")):
        assert not button.isEnabled()
        assert button.toolTip() == f"{name} (clinicflow_staff) may not {words}"
    assert inspector.run_actions.run_again.isEnabled()   # staff may start runs
    records = window.records
    assert records.add_button.isEnabled()
    assert records.erase_button.toolTip() == f"{name} (clinicflow_staff) may not erase patients"
    assert not window.workflows.new_action.isEnabled()
    qtbot.waitUntil(lambda: window.workflows.tree.topLevelItemCount() == 1, timeout=WAIT)
    switch = window.workflows.tree.topLevelItem(0)
    assert not switch.flags() & Qt.ItemFlag.ItemIsUserCheckable
    assert switch.toolTip(2) == f"{name} (clinicflow_staff) may not enable workflows"
    runs = window.show_all_runs()
    assert not runs.bulk_button.isEnabled()
    assert runs.bulk_button.toolTip() == f"{name} (clinicflow_staff) may not retry runs"
    page = window.open_workflow(workflow_id)
    editor = page.editor
    assert not editor.publish_action.isEnabled()
    assert editor.publish_action.toolTip() == f"{name} (clinicflow_staff) may not publish workflows"
    assert not editor.enabled_action.isEnabled()
    assert editor.status_label.text() == f"Read-only: {name} (clinicflow_staff) may not edit workflows"
    assert not editor.node_palette.isEnabled() and not editor.save_action.isEnabled()
    editor.refresh_state()   # the editor enabling its own switch again does not undo the role
    assert not editor.enabled_action.isEnabled()


@pytest.mark.postgres
def test_a_refusal_by_the_database_anyway_is_one_line(
        qtbot: Any, owner: Database, login_url: Any, open_window: Any) -> None:
    _workflow_id, run_id = failing_workflow(owner)
    name, url = login_url("staff")
    window = open_window(url)
    inspector = show_failed_run(qtbot, window, run_id)
    # As if the button had been enabled: the database itself refuses.
    inspector.run_actions.do_retry_latest()
    result = inspector.run_actions.result
    qtbot.waitUntil(result.isVisible, timeout=WAIT)
    assert result.text() == f"Retry on latest refused: {name} (clinicflow_staff) may not retry runs"
    assert status(owner, run_id) == "failed"
    from app.views.bulk_actions import BulkDialog

    dialog = BulkDialog(window.db, name, window.show_all_runs("failed").model.run_filter, [], window,
                        gate=window.gate)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.preview_value is not None, timeout=WAIT)
    assert not dialog.start_button.isEnabled()
    assert dialog.start_button.toolTip() == f"{name} (clinicflow_staff) may not retry runs"
    dialog.start()   # pressed anyway
    qtbot.waitUntil(lambda: not dialog.running and dialog.result_label.isVisible(), timeout=WAIT)
    assert dialog.result_label.text() == (f"Stopped: {name} (clinicflow_staff) may not retry runs. "
                                          "Runs changed before this stay changed.")
    assert status(owner, run_id) == "failed"


@pytest.mark.postgres
def test_a_manager_may_retry_and_erase_but_not_publish(
        qtbot: Any, owner: Database, login_url: Any, open_window: Any) -> None:
    workflow_id, run_id = failing_workflow(owner)
    name, url = login_url("manager")
    window = open_window(url)
    inspector = show_failed_run(qtbot, window, run_id)
    # Retry on latest waits for a newer version (none is published): its own reason, not the role's.
    assert inspector.retry_run.isEnabled() and "may not" not in inspector.run_actions.retry_latest.toolTip()
    assert inspector.run_actions.retry_latest.toolTip().startswith("Retry on latest is for after a fix")
    assert inspector.retry_run.toolTip().startswith("Walk the whole workflow again")  # its own tooltip back
    page = window.open_workflow(workflow_id)
    assert not page.editor.publish_action.isEnabled()
    assert page.editor.enabled_action.isEnabled()
    assert window.workflows.tree.topLevelItem(0).flags() & Qt.ItemFlag.ItemIsUserCheckable
    qtbot.mouseClick(inspector.retry_run, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: status(owner, run_id) == "running", timeout=WAIT)
    from app.api.history import list_history

    assert list_history(owner, subject=f"run:{run_id}")[0].actor == name


@pytest.mark.postgres
def test_settings_for_a_designer_show_secrets_as_set_and_save_only_this_workstation(
        qtbot: Any, owner: Database, login_url: Any, open_window: Any) -> None:
    from app.api import settings as settings_api

    settings_api.set_integration(owner, "sms", {"url": "http://127.0.0.1:9/send", "token": "s3cret",
                                                "sender": "Clinic"}, "setup")
    name, url = login_url("designer")
    window = open_window(url)
    window.open_settings()
    dialog = window.settings_dialog
    qtbot.waitUntil(lambda: dialog.loaded, timeout=WAIT)
    token = dialog.sms["token"]
    assert token.text() == "" and token.placeholderText() == "set"
    assert dialog.smtp["password"].placeholderText() == "not set"
    assert not token.isEnabled() and token.toolTip() == f"{name} (clinicflow_designer) may not change integrations"
    assert not dialog.max_nodes.isEnabled()
    assert not dialog.member.isEnabled()
    assert dialog.member.toolTip() == f"On a shared PostgreSQL database you are recorded as your login, {name}"
    dialog.runtime_enabled.setChecked(False)   # a choice of this workstation's
    with qtbot.waitSignal(dialog.accepted, timeout=WAIT):   # saved: no refusal for the practice's settings
        dialog.save()
    assert settings_api.integration(owner, "sms").values["token"] == "s3cret"
    assert window.settings.value("runtime/enabled", type=bool) is False


@pytest.mark.postgres
def test_settings_team_for_an_admin_lists_adds_changes_and_removes(
        qtbot: Any, pg_url: str, owner: Database, login_url: Any, open_window: Any, made_roles: list[str]) -> None:
    staff, _ = login_url("staff")
    name, url = login_url("admin")
    window = open_window(url)
    window.open_settings()
    page = window.settings_dialog.team_page
    qtbot.waitUntil(lambda: page.state is not None and page.state.members is not None, timeout=WAIT)
    listed = {page.table.item(r, 0).text(): page.table.item(r, 1).text() for r in range(page.table.rowCount())}
    assert listed[staff] == "Staff" and listed[name] == "Admin"

    newcomer = f"cf_new_{uuid.uuid4().hex[:8]}"
    made_roles.append(newcomer)
    page.new_name.setText(newcomer)
    page.new_role.setCurrentIndex(page.new_role.findData("clinicflow_manager"))
    page.new_password.setText("a long password")
    with qtbot.waitSignal(page.changed, timeout=WAIT):
        qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    assert page.result.text() == f"Added {newcomer} as Manager: they can log in now."
    assert page.new_password.text() == ""
    conninfo = make_url(pg_url)
    with psycopg.connect(host=conninfo.host, port=conninfo.port or 5432, dbname=conninfo.database,
                         user=newcomer, password="a long password") as conn:
        assert conn.execute("SELECT session_user").fetchone() == (newcomer,)
    qtbot.waitUntil(lambda: page.select(newcomer), timeout=WAIT)
    page.role_of_selected.setCurrentIndex(page.role_of_selected.findData("clinicflow_designer"))
    with qtbot.waitSignal(page.changed, timeout=WAIT):
        qtbot.mouseClick(page.set_role_button, Qt.MouseButton.LeftButton)
    assert {m.name: m.role for m in team.list_members(owner)}[newcomer] == "clinicflow_designer"

    qtbot.waitUntil(lambda: page.select(newcomer) and page.remove_button.isEnabled(), timeout=WAIT)
    qtbot.mouseClick(page.remove_button, Qt.MouseButton.LeftButton)
    box = page.remove_confirmation
    assert box.text() == f"Remove {newcomer}? They can no longer log in; what they did stays in the history."
    with qtbot.waitSignal(page.changed, timeout=WAIT):
        box.findChild(type(page.add_button), "teamRemoveYes").click()
    assert newcomer not in {m.name for m in team.list_members(owner)}

    # The database's own refusal is one line: an admin cannot remove themselves.
    qtbot.waitUntil(lambda: page.select(name), timeout=WAIT)
    page.remove(name)
    qtbot.waitUntil(lambda: page.result.text().startswith("Not done"), timeout=WAIT)
    assert page.result.text() == f"Not done: you cannot remove yourself ({name}); ask another admin"


@pytest.mark.postgres
def test_the_team_page_tells_a_non_admin_why_not(qtbot: Any, login_url: Any, open_window: Any) -> None:
    name, url = login_url("designer")
    window = open_window(url)
    window.open_settings()
    page = window.settings_dialog.team_page
    qtbot.waitUntil(lambda: page.state is not None, timeout=WAIT)
    assert page.note.text() == (f"{name} (clinicflow_designer) may not manage the team: ask an admin of the "
                                "practice to add, change or remove team members.")
    assert not page.body.isVisible()


def test_on_sqlite_everything_is_allowed_and_the_team_page_says_teams_need_postgresql(
        qtbot: Any, sqlite_url: str, open_window: Any) -> None:
    db = open_database(sqlite_url)
    try:
        _workflow_id, run_id = failing_workflow(db)
    finally:
        db.dispose()
    window = open_window(sqlite_url)
    assert window.gate.member.role is None
    inspector = show_failed_run(qtbot, window, run_id)
    assert inspector.retry_run.isEnabled() and "may not" not in inspector.run_actions.retry_latest.toolTip()
    assert window.records.add_button.isEnabled() and window.workflows.new_action.isEnabled()
    window.open_settings()
    page = window.settings_dialog.team_page
    qtbot.waitUntil(lambda: page.state is not None, timeout=WAIT)
    assert page.note.text() == ("Teams need PostgreSQL: on SQLite (one workstation) the operating-system login "
                                "is the actor and every action is allowed.")
    assert window.settings_dialog.sms["token"].isEnabled()
