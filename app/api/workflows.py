"""Workflows: the list, drafts, import and export, publish with its pre-flight, enable and
disable, versions, restore, delete or archive, duplicate, rename, the webhook token, and the
workflows a record's Actions menu can start.

Each function is one transaction; refusals (`NotFound`, `WrongState`, a workflow's
problems) name the workflow and say why.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, and_, func, select

from app.runtime.dry_run import DryRunResult, dry_run
from app.runtime.integrations import NOT_CONFIGURED_PROBLEM, TEST_FAILED_PROBLEM, PreflightWarning, preflight_checks
from app.store import workflows as store
from app.store.database import Database
from app.store.records import RecordRef
from app.store.schema import workflow_versions, workflows
from app.store.settings import default_limits
from app.store.workflows import VersionInfo, WorkflowInfo
from app.workflow import Problem, Workflow, WorkflowFileError, load_workflow

__all__ = [
    "NOT_CONFIGURED_PROBLEM", "TEST_FAILED_PROBLEM", "EditorStart", "ManualWorkflow", "PreflightWarning",
    "PublishResult", "VersionInfo", "Webhook", "WorkflowInfo", "WorkflowState",
    "create_workflow", "delete_workflow", "duplicate_workflow", "export_workflow", "get_draft", "get_info",
    "get_version", "import_workflow", "list_versions", "list_workflows", "live_version", "manual_workflows",
    "open_for_editing", "preflight_warnings", "publish", "read_workflow_file", "rename_workflow",
    "restore_version", "save_draft", "set_enabled", "test_run", "update_workflow", "webhook", "workflow_state",
]


def list_workflows(db: Database, *, include_archived: bool = False) -> list[WorkflowInfo]:
    """Every workflow with its trigger, enabled state, live version, unpublished mark and failed-run count."""
    with db.read() as conn:
        return store.list_workflows(conn, include_archived=include_archived)


def get_info(db: Database, workflow_id: int) -> WorkflowInfo:
    with db.read() as conn:
        return store.get_info(conn, workflow_id)


def get_draft(db: Database, workflow_id: int) -> Workflow:
    with db.read() as conn:
        return store.get_draft(conn, workflow_id)


def get_version(db: Database, workflow_id: int, number: int) -> Workflow:
    with db.read() as conn:
        return store.get_version(conn, workflow_id, number)


def live_version(db: Database, workflow_id: int) -> tuple[int | None, Workflow | None]:
    """The live (newest published) version's number and definition; (None, None) if none."""
    with db.read() as conn:
        number = store.live_version_number(conn, workflow_id)
        return number, store.get_version(conn, workflow_id, number) if number is not None else None


def list_versions(db: Database, workflow_id: int) -> list[VersionInfo]:
    """Published versions, newest first."""
    with db.read() as conn:
        return store.list_versions(conn, workflow_id)


@dataclass(frozen=True)
class EditorStart:
    """What the editor opens with: the draft (or a version, read-only) and the practice's
    safety limits (the Problems list checks the draft against them, as Publish does)."""

    workflow: Workflow
    default_max_nodes: int
    default_limits: Mapping[str, int] = field(default_factory=dict)


def open_for_editing(db: Database, workflow_id: int, version: int | None = None) -> EditorStart:
    with db.read() as conn:
        workflow = (store.get_draft(conn, workflow_id) if version is None
                    else store.get_version(conn, workflow_id, version))
        limits = default_limits(conn)
        return EditorStart(workflow, int(limits["max_nodes"]), MappingProxyType(dict(limits)))


@dataclass(frozen=True)
class WorkflowState:
    """The editor's toolbar state: the list line (enabled, live version) and the versions."""

    info: WorkflowInfo
    versions: tuple[VersionInfo, ...]


def workflow_state(db: Database, workflow_id: int) -> WorkflowState:
    with db.read() as conn:
        return WorkflowState(store.get_info(conn, workflow_id), tuple(store.list_versions(conn, workflow_id)))


def create_workflow(db: Database, workflow: Workflow, actor: str) -> int:
    """A new workflow whose draft is `workflow`; its id."""
    with db.write() as conn:
        return store.create_workflow(conn, workflow, actor)


def read_workflow_file(path: str) -> str:
    """A workflow file's text; `-` is standard input. A byte-order mark is allowed."""
    if path == "-":
        return sys.stdin.read().removeprefix("\ufeff")
    # utf-8-sig: Windows Notepad saves UTF-8 with a byte-order mark, which JSON forbids.
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WorkflowFileError([Problem(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8")]) from None


def import_workflow(db: Database, text: str, actor: str) -> int:
    """A new workflow from a `clinicflow.workflow/1` document; every problem is reported at once."""
    return create_workflow(db, load_workflow(text), actor)


def update_workflow(db: Database, workflow_id: int, text: str, actor: str) -> None:
    """Replace the draft of `workflow_id` with a document; the live version is untouched."""
    workflow = load_workflow(text)
    with db.write() as conn:
        store.update_draft(conn, workflow_id, workflow, actor)


def save_draft(db: Database, workflow_id: int, workflow: Workflow, *, keep_stored_name: bool = False) -> None:
    """The editor's autosave. With `keep_stored_name`, a rename made elsewhere (the
    workflows list) wins over the name the editor loaded."""
    with db.write() as conn:
        if keep_stored_name:
            workflow = workflow.model_copy(update={"name": store.get_info(conn, workflow_id).name})
        store.update_draft(conn, workflow_id, workflow)


def export_workflow(db: Database, workflow_id: int, version: int | None = None) -> str:
    """The draft, or version N, as a `clinicflow.workflow/1` JSON document."""
    return (get_draft(db, workflow_id) if version is None else get_version(db, workflow_id, version)).to_json()


def preflight_warnings(db: Database, workflow: Workflow) -> list[PreflightWarning]:
    """What Publish warns about (they do not stop it): integrations the workflow needs but
    cannot use, records of its trigger's type lacking the address its messages go to. Each
    warning's `text` is the command line's; the app words an integration's warning itself
    from its `integration` and `problem` (no command-line syntax in the app)."""
    with db.read() as conn:
        return preflight_checks(conn, workflow)


def test_run(db: Database, workflow: Workflow, record: RecordRef | None = None,
             payload: dict[str, Any] | None = None, *, workflow_id: int | None = None) -> DryRunResult:
    """The editor's Test run: the draft against a record with no side effects (messages are
    rendered, not sent; record changes are rolled back; waits are shown, not waited; the
    messaging rules and, given `workflow_id`, `reenrol` say what a real run would do)."""
    return dry_run(db, workflow, record, payload, workflow_id=workflow_id)


@dataclass(frozen=True)
class PublishResult:
    number: int
    warnings: tuple[PreflightWarning, ...]


def publish(db: Database, workflow_id: int, actor: str, note: str | None = None) -> PublishResult:
    """Validate the draft and store it as the next version. A draft with problems is refused
    (`WorkflowNotPublishable` with every problem) and nothing is stored."""
    with db.write() as conn:
        number = store.publish(conn, workflow_id, actor, note)
    with db.read() as conn:
        warnings = tuple(preflight_checks(conn, store.get_version(conn, workflow_id, number)))
    return PublishResult(number, warnings)


def set_enabled(db: Database, workflow_id: int, enabled: bool, actor: str) -> bool:
    """Enable or disable; whether anything changed. Disabling leaves runs in progress alone."""
    with db.write() as conn:
        return store.set_enabled(conn, workflow_id, enabled, actor)


def restore_version(db: Database, workflow_id: int, number: int, actor: str) -> None:
    """Make version N the draft again (the live version stays until the next publish)."""
    with db.write() as conn:
        store.update_draft(conn, workflow_id, store.get_version(conn, workflow_id, number), actor)


def delete_workflow(db: Database, workflow_id: int, actor: str) -> str:
    """Delete a workflow that never ran; one with runs is archived. Returns "deleted" or "archived"."""
    with db.write() as conn:
        return store.delete_workflow(conn, workflow_id, actor)


def duplicate_workflow(db: Database, workflow_id: int, actor: str) -> int:
    """A copy of the draft named "… (copy)"; its id."""
    with db.write() as conn:
        return store.duplicate_workflow(conn, workflow_id, actor)


def rename_workflow(db: Database, workflow_id: int, name: str, actor: str) -> None:
    with db.write() as conn:
        store.rename_workflow(conn, workflow_id, name, actor)


@dataclass(frozen=True)
class Webhook:
    path: str
    token: str | None   # shown once: when made or rotated; None when one is already set


def webhook(db: Database, workflow_id: int, *, rotate: bool = False, actor: str | None = None) -> Webhook:
    """A webhook workflow's path, and its token when this call makes one (first use, or
    `rotate`); only the token's hash is stored, so an existing token cannot be shown again."""
    with db.write() as conn:
        token = store.webhook_token(conn, workflow_id, rotate=rotate, actor=actor)
    return Webhook(f"/hooks/{workflow_id}", token)


@dataclass(frozen=True)
class ManualWorkflow:
    id: int
    name: str


def manual_workflows(db: Database, record_type: str) -> list[ManualWorkflow]:
    """Enabled workflows whose live version starts by hand from a record of this type
    (the records browser's Actions menu), by name; one query."""
    with db.read() as conn:
        return _manual_workflows(conn, record_type)


def _manual_workflows(conn: Connection, record_type: str) -> list[ManualWorkflow]:
    latest = (select(workflow_versions.c.workflow_id, func.max(workflow_versions.c.number).label("number"))
              .group_by(workflow_versions.c.workflow_id).subquery())
    query = (select(workflows.c.id, workflows.c.name, workflow_versions.c.definition)
             .join(latest, latest.c.workflow_id == workflows.c.id)
             .join(workflow_versions, and_(workflow_versions.c.workflow_id == workflows.c.id,
                                           workflow_versions.c.number == latest.c.number))
             .where(workflows.c.enabled.is_(True), workflows.c.archived.is_(False)))
    found = []
    for row in conn.execute(query):
        for node in (row.definition or {}).get("nodes", []):
            if node.get("type") == "trigger.manual" and (node.get("config") or {}).get("record_type") == record_type:
                found.append(ManualWorkflow(row.id, row.name))
                break
    return sorted(found, key=lambda w: w.name.lower())
