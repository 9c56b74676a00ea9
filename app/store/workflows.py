"""Workflows in the database: drafts, immutable published versions, enabled state.

The stored form of a draft and of every version is the workflow model's `to_dict()`,
never an editor's own session format. Functions take a `Connection`; the caller owns the
transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from app.workflow import Workflow, check_publishable, load_workflow
from app.workflow.vocabulary import RunStatus

from .errors import NotFound, WrongState
from .history import record_action
from .records import MAX_ID
from .schema import runs, workflow_versions, workflows
from .settings import default_limits
from .timeutil import utcnow


@dataclass(frozen=True)
class WorkflowInfo:
    """One line of the workflows list (`workflow list --json` and the app's dock)."""

    id: int
    name: str
    trigger: str | None
    enabled: bool
    published_version: int | None
    has_unpublished_changes: bool
    archived: bool
    updated_at: datetime
    failed_runs: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "trigger": self.trigger, "enabled": self.enabled,
                "published_version": self.published_version,
                "has_unpublished_changes": self.has_unpublished_changes}


@dataclass(frozen=True)
class VersionInfo:
    number: int
    published_at: datetime
    published_by: str
    note: str | None

    def to_json(self) -> dict[str, Any]:
        from .timeutil import iso

        return {"number": self.number, "published_at": iso(self.published_at),
                "published_by": self.published_by, "note": self.note}


def _trigger_type(definition: dict[str, Any]) -> str | None:
    types = [n.get("type") for n in definition.get("nodes", []) if str(n.get("type", "")).startswith("trigger.")]
    return types[0] if len(types) == 1 else None


def _same(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    return a == b


def create_workflow(conn: Connection, workflow: Workflow, actor: str) -> int:
    now = utcnow()
    new_id = conn.execute(insert(workflows).values(
        name=workflow.name, draft=workflow.to_dict(), enabled=False, archived=False,
        created_at=now, updated_at=now).returning(workflows.c.id)).scalar_one()
    record_action(conn, actor, "workflow.create", f"workflow:{new_id}", {"name": workflow.name})
    return int(new_id)


def _row(conn: Connection, workflow_id: int, *, lock: bool = False) -> Any:
    if not 0 <= workflow_id <= MAX_ID:
        raise NotFound(f"there is no workflow {workflow_id}")
    query = select(workflows).where(workflows.c.id == workflow_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"there is no workflow {workflow_id}")
    return row


def update_draft(conn: Connection, workflow_id: int, workflow: Workflow, actor: str | None = None) -> None:
    """Replace the draft; the live version is untouched."""
    row = _row(conn, workflow_id)
    if row["archived"]:
        raise WrongState(f"workflow {workflow_id} is archived")
    conn.execute(update(workflows).where(workflows.c.id == workflow_id).values(
        name=workflow.name, draft=workflow.to_dict(), updated_at=utcnow()))
    if actor is not None:
        record_action(conn, actor, "workflow.update", f"workflow:{workflow_id}", None)


def get_draft(conn: Connection, workflow_id: int) -> Workflow:
    return load_workflow(_row(conn, workflow_id)["draft"])


def live_version_number(conn: Connection, workflow_id: int) -> int | None:
    return conn.execute(select(func.max(workflow_versions.c.number))
                        .where(workflow_versions.c.workflow_id == workflow_id)).scalar()


def get_version(conn: Connection, workflow_id: int, number: int) -> Workflow:
    if not 0 <= number <= MAX_ID:
        _row(conn, workflow_id)
        raise NotFound(f"workflow {workflow_id} has no version {number}")
    definition = conn.execute(select(workflow_versions.c.definition).where(
        workflow_versions.c.workflow_id == workflow_id, workflow_versions.c.number == number)).scalar()
    if definition is None:
        _row(conn, workflow_id)
        raise NotFound(f"workflow {workflow_id} has no version {number}")
    return load_workflow(definition)


def list_versions(conn: Connection, workflow_id: int) -> list[VersionInfo]:
    """Newest first."""
    _row(conn, workflow_id)
    rows = conn.execute(select(workflow_versions).where(workflow_versions.c.workflow_id == workflow_id)
                        .order_by(workflow_versions.c.number.desc())).mappings()
    return [VersionInfo(r["number"], r["published_at"], r["published_by"], r["note"]) for r in rows]


def publish(conn: Connection, workflow_id: int, actor: str, note: str | None = None) -> int:
    """Validate the draft and store it as the next version; returns its number.

    Raises `WorkflowNotPublishable` with every problem; nothing is stored then.
    """
    row = _row(conn, workflow_id, lock=True)
    if row["archived"]:
        raise WrongState(f"workflow {workflow_id} is archived")
    draft = load_workflow(row["draft"])
    check_publishable(draft, defaults=default_limits(conn))
    number = (live_version_number(conn, workflow_id) or 0) + 1
    now = utcnow()
    conn.execute(insert(workflow_versions).values(
        workflow_id=workflow_id, number=number, definition=draft.to_dict(), published_at=now,
        published_by=actor, note=note or None))
    conn.execute(update(workflows).where(workflows.c.id == workflow_id).values(updated_at=now))
    record_action(conn, actor, "workflow.publish", f"workflow:{workflow_id}", {"version": number, "note": note})
    return number


def set_enabled(conn: Connection, workflow_id: int, enabled: bool, actor: str) -> bool:
    """Enable or disable; returns whether anything changed. Disabling leaves runs alone."""
    row = _row(conn, workflow_id, lock=True)
    if enabled:
        if row["archived"]:
            raise WrongState(f"workflow {workflow_id} is archived")
        if live_version_number(conn, workflow_id) is None:
            raise WrongState(f"workflow {workflow_id} has no published version; publish it before enabling it")
    if bool(row["enabled"]) == enabled:
        return False
    # A webhook's token is made by `webhook_token` (shown once then), never here unseen.
    values: dict[str, Any] = {"enabled": enabled, "updated_at": utcnow()}
    conn.execute(update(workflows).where(workflows.c.id == workflow_id).values(**values))
    record_action(conn, actor, "workflow.enable" if enabled else "workflow.disable", f"workflow:{workflow_id}")
    return True


def new_webhook_token() -> str:
    return secrets.token_urlsafe(32)


def hash_webhook_token(token: str) -> str:
    """What is stored of a webhook token (SHA-256, hex): a stolen copy of the database
    cannot start runs, and a presented token is compared by this hash."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _is_hash(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def hash_stored_webhook_tokens(conn: Connection) -> int:
    """Migration 0004: plain tokens stored before become their hashes (they keep working)."""
    rows = conn.execute(select(workflows.c.id, workflows.c.webhook_token)
                        .where(workflows.c.webhook_token.is_not(None))).all()
    changed = 0
    for workflow_id, token in rows:
        if not _is_hash(token):
            conn.execute(update(workflows).where(workflows.c.id == workflow_id)
                         .values(webhook_token=hash_webhook_token(token)))
            changed += 1
    return changed


def rename_workflow(conn: Connection, workflow_id: int, name: str, actor: str) -> None:
    name = name.strip()
    if not name:
        raise WrongState("a workflow needs a name")
    draft = get_draft(conn, workflow_id).model_copy(update={"name": name})
    update_draft(conn, workflow_id, draft)
    record_action(conn, actor, "workflow.rename", f"workflow:{workflow_id}", {"name": name})


def duplicate_workflow(conn: Connection, workflow_id: int, actor: str) -> int:
    draft = get_draft(conn, workflow_id)
    return create_workflow(conn, draft.model_copy(update={"name": f"{draft.name} (copy)"}), actor)


def delete_workflow(conn: Connection, workflow_id: int, actor: str) -> str:
    """Delete a workflow that never ran; one that has runs is archived instead.

    Returns "deleted" or "archived".
    """
    _row(conn, workflow_id, lock=True)
    has_runs = conn.execute(select(runs.c.id).where(runs.c.workflow_id == workflow_id).limit(1)).first()
    if has_runs:
        conn.execute(update(workflows).where(workflows.c.id == workflow_id)
                     .values(archived=True, enabled=False, updated_at=utcnow()))
        record_action(conn, actor, "workflow.archive", f"workflow:{workflow_id}")
        return "archived"
    from sqlalchemy import delete

    from .schema import schedule_fires

    conn.execute(delete(schedule_fires).where(schedule_fires.c.workflow_id == workflow_id))
    conn.execute(delete(workflow_versions).where(workflow_versions.c.workflow_id == workflow_id))
    conn.execute(delete(workflows).where(workflows.c.id == workflow_id))
    record_action(conn, actor, "workflow.delete", f"workflow:{workflow_id}")
    return "deleted"


def list_workflows(conn: Connection, *, include_archived: bool = False) -> list[WorkflowInfo]:
    latest = (select(workflow_versions.c.workflow_id, func.max(workflow_versions.c.number).label("number"))
              .group_by(workflow_versions.c.workflow_id).subquery())
    failed = (select(runs.c.workflow_id, func.count().label("failed")).where(runs.c.status == RunStatus.FAILED.value)
              .group_by(runs.c.workflow_id).subquery())
    query = (select(workflows, latest.c.number, workflow_versions.c.definition, failed.c.failed)
             .outerjoin(latest, latest.c.workflow_id == workflows.c.id)
             .outerjoin(workflow_versions, and_(workflow_versions.c.workflow_id == workflows.c.id,
                                                workflow_versions.c.number == latest.c.number))
             .outerjoin(failed, failed.c.workflow_id == workflows.c.id)
             .order_by(workflows.c.id))
    if not include_archived:
        query = query.where(workflows.c.archived.is_(False))
    result = []
    for r in conn.execute(query).mappings():
        result.append(WorkflowInfo(
            id=r["id"], name=r["name"], trigger=_trigger_type(r["draft"]), enabled=bool(r["enabled"]),
            published_version=r["number"],
            has_unpublished_changes=r["number"] is None or not _same(r["draft"], r["definition"]),
            archived=bool(r["archived"]), updated_at=r["updated_at"], failed_runs=int(r["failed"] or 0)))
    return result


def get_info(conn: Connection, workflow_id: int) -> WorkflowInfo:
    for info in list_workflows(conn, include_archived=True):
        if info.id == workflow_id:
            return info
    raise NotFound(f"there is no workflow {workflow_id}")


def webhook_token(conn: Connection, workflow_id: int, *, rotate: bool = False,
                  actor: str | None = None) -> str | None:
    """A new webhook token, made on first use or when `rotate` replaces it; only its hash is
    stored, so it is returned this once. None: a token is already set (and cannot be shown)."""
    row = _row(conn, workflow_id, lock=True)
    if _trigger_type(row["draft"]) != "trigger.webhook" and not rotate and row["webhook_token"] is None:
        trigger = _trigger_type(row["draft"])
        raise WrongState(f"workflow {workflow_id} is not started by a webhook (its trigger is {trigger})")
    if row["webhook_token"] is not None and not rotate:
        return None
    token = new_webhook_token()
    conn.execute(update(workflows).where(workflows.c.id == workflow_id)
                 .values(webhook_token=hash_webhook_token(token)))
    if actor:
        record_action(conn, actor, "workflow.webhook_rotate" if rotate else "workflow.webhook_create",
                      f"workflow:{workflow_id}")
    return token
