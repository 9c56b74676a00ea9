"""Workflows in the database: drafts, immutable published versions, enabled state.

The stored form of a draft and of every version is the workflow model's `to_dict()`,
never an editor's own session format. Functions take a `Connection`; the caller owns the
transaction.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Text, and_, bindparam, cast, exists, func, insert, literal, select, update

from app.workflow import Workflow, check_publishable, load_workflow
from app.workflow.vocabulary import RunStatus

from .errors import NotFound, WrongState
from .history import record_action
from .records import MAX_ID
from .schema import RECORD_TABLES, history, runs, settings, workflow_versions, workflows
from .settings import DEFAULT_LIMITS, LIMITS_KEY, default_limits
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


@dataclass(frozen=True)
class LiveVersion:
    """A workflow's state and its published version, read in one statement (`live_version`).

    `workflow` is shared between callers (it comes from a cache): treat it as read-only."""

    id: int
    name: str
    enabled: bool
    archived: bool
    number: int | None
    workflow: Workflow | None
    limits: dict[str, int]  # the version's limits with the practice defaults filled in
    published_at: datetime | None = None
    limits_text: str | None = None  # the stored default limits as text (None: not set)


# Published versions never change, so each is parsed once per process. The key names the
# database (its URL) and the version's publication time as well as (workflow id, number): a
# workflow that never ran may be deleted and its id reused by a new one.
_PARSED_MAX: Final = 256
_parsed: OrderedDict[tuple[str, int, int, datetime], Workflow] = OrderedDict()
_parsed_lock = threading.Lock()
_latest = (select(workflow_versions.c.workflow_id, func.max(workflow_versions.c.number).label("number"))
           .where(workflow_versions.c.workflow_id == bindparam("wid")).group_by(workflow_versions.c.workflow_id)
           .subquery())
# One round trip for a start: the workflow, its live version's number and time, the default limits.
_LIVE: Final = (select(workflows.c.id, workflows.c.name, workflows.c.enabled, workflows.c.archived,
                       workflow_versions.c.number, workflow_versions.c.published_at,
                       select(settings.c.value).where(settings.c.key == LIMITS_KEY).scalar_subquery()
                       .label("limits"),
                       select(cast(settings.c.value, Text)).where(settings.c.key == LIMITS_KEY).scalar_subquery()
                       .label("limits_text"))
                .select_from(workflows.outerjoin(_latest, _latest.c.workflow_id == workflows.c.id)
                             .outerjoin(workflow_versions, and_(workflow_versions.c.workflow_id == workflows.c.id,
                                                                workflow_versions.c.number == _latest.c.number)))
                .where(workflows.c.id == bindparam("wid")))
_DEFINITION: Final = select(workflow_versions.c.definition).where(
    workflow_versions.c.workflow_id == bindparam("wid"), workflow_versions.c.number == bindparam("number"))


def published_workflow(conn: Connection, workflow_id: int, number: int, published_at: datetime) -> Workflow:
    """The parsed published version (read-only, shared): parsed and read at most once per process."""
    key = (str(conn.engine.url), workflow_id, number, published_at)
    with _parsed_lock:
        workflow = _parsed.get(key)
        if workflow is not None:
            _parsed.move_to_end(key)
            return workflow
    definition = conn.execute(_DEFINITION, {"wid": workflow_id, "number": number}).scalar_one()
    workflow = load_workflow(definition)
    with _parsed_lock:
        _parsed[key] = workflow
        while len(_parsed) > _PARSED_MAX:
            _parsed.popitem(last=False)
    return workflow


def live_version(conn: Connection, workflow_id: int) -> LiveVersion:
    """The workflow and its live version for starting a run; `NotFound` if there is no such workflow.
    What it read is remembered for `known_live` (the next start's one-statement path)."""
    if not 0 <= workflow_id <= MAX_ID:
        raise NotFound(f"there is no workflow {workflow_id}")
    row = conn.execute(_LIVE, {"wid": workflow_id}).first()
    if row is None:
        raise NotFound(f"there is no workflow {workflow_id}")
    stored = row.limits if isinstance(row.limits, dict) else {}
    limits = {key: int(stored.get(key, fallback)) for key, fallback in DEFAULT_LIMITS.items()}
    workflow = None
    if row.number is not None:
        workflow = published_workflow(conn, workflow_id, row.number, row.published_at)
        for key, value in (workflow.limits.model_dump() if workflow.limits else {}).items():
            if value is not None:
                limits[key] = int(value)
    live = LiveVersion(row.id, row.name, bool(row.enabled), bool(row.archived), row.number, workflow, limits,
                       row.published_at, row.limits_text)
    with _parsed_lock:
        _known[(str(conn.engine.url), workflow_id)] = live
        while len(_known) > _PARSED_MAX:
            _known.popitem(last=False)
    return live


# The last `live_version` read of each workflow (per database): a start on PostgreSQL takes it
# as its guess and checks it in the same statement that inserts the run (`start_at_once`).
_known: OrderedDict[tuple[str, int], LiveVersion] = OrderedDict()


def known_live(url: str, workflow_id: int) -> LiveVersion | None:
    """What `live_version` last read of this workflow in this process (maybe stale), or None."""
    with _parsed_lock:
        return _known.get((url, workflow_id))


_RUN_COLUMNS: Final = ("workflow_id", "version", "status", "trigger_kind", "record_type", "record_id",
                       "trigger_data", "event_id", "started_by", "triggered_at", "deadline_at", "due_at", "state",
                       "updated_at")
_HISTORY_COLUMNS: Final = ("at", "actor", "action", "detail")
_at_once: dict[str | None, Any] = {}


def _start_statement(record_type: str | None) -> Any:
    """INSERT the run only if the guessed live version still holds (enabled, the same newest
    version and publication time, the same default limits, the record exists), its history
    entry, and pg_notify: one statement, so one round trip in autocommit (PostgreSQL)."""
    statement = _at_once.get(record_type)
    if statement is not None:
        return statement
    wid = bindparam("r_workflow_id", type_=runs.c.workflow_id.type)
    newer = select(workflow_versions.c.number).where(workflow_versions.c.workflow_id == wid,
                                                     workflow_versions.c.number > bindparam("g_number"))
    holds = [
        exists(select(workflows.c.id)
               .select_from(workflows.join(workflow_versions, workflow_versions.c.workflow_id == workflows.c.id))
               .where(workflows.c.id == wid, workflows.c.enabled.is_(True),
                      workflow_versions.c.number == bindparam("g_number"),
                      workflow_versions.c.published_at == bindparam("g_published_at",
                                                                    type_=workflow_versions.c.published_at.type))),
        ~exists(newer),
        select(cast(settings.c.value, Text)).where(settings.c.key == LIMITS_KEY).scalar_subquery()
        .is_not_distinct_from(bindparam("g_limits_text", type_=Text)),
    ]
    if record_type is not None:
        table = RECORD_TABLES[record_type]
        holds.append(exists().where(table.c.id == bindparam("g_record_id")))
    values = select(*[cast(bindparam(f"r_{name}", type_=runs.c[name].type), runs.c[name].type)
                      for name in _RUN_COLUMNS]).where(*holds)
    started = insert(runs).from_select(list(_RUN_COLUMNS), values).returning(runs.c.id).cte("started")
    entry = select(*[cast(bindparam(f"h_{name}", type_=history.c[name].type), history.c[name].type)
                     for name in ("at", "actor", "action")],
                   literal("run:", Text) + cast(started.c.id, Text),
                   cast(bindparam("h_detail", type_=history.c.detail.type), history.c.detail.type)
                   ).select_from(started)
    noted = insert(history).from_select(["at", "actor", "action", "subject", "detail"], entry).cte("noted")
    statement = select(started.c.id, func.pg_notify(bindparam("channel"), "")).add_cte(noted)
    _at_once[record_type] = statement
    return statement


def start_at_once(conn: Connection, guess: LiveVersion, run: dict[str, Any], entry: dict[str, Any],
                  channel: str) -> int | None:
    """One statement (PostgreSQL): the run `run` (its column values), if `guess` still describes
    the workflow and its record exists, with the history entry `entry` (at, actor, action,
    detail) and a NOTIFY on `channel`; the run's id, or None having written nothing (the guess
    is stale, the record is gone: the caller starts the ordinary way, which says why)."""
    params: dict[str, Any] = {f"r_{name}": run.get(name) for name in _RUN_COLUMNS}
    params.update({f"h_{name}": entry.get(name) for name in _HISTORY_COLUMNS})
    params.update({"g_number": guess.number, "g_published_at": guess.published_at,
                   "g_limits_text": guess.limits_text, "g_record_id": run.get("record_id"), "channel": channel})
    run_id = conn.execute(_start_statement(run.get("record_type")), params).scalar()
    return None if run_id is None else int(run_id)


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
