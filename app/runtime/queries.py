"""The read side of runs for the command line and the app: `run show/list --json` objects.

Times are ISO 8601 in UTC (DESIGN section 8); step inputs and outputs are as recorded.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from app.store.errors import NotFound
from app.store.records import RecordRef, describe
from app.store.schema import runs, steps, workflows
from app.store.timeutil import iso, utcnow


def _run_query() -> Any:
    return select(runs, workflows.c.name.label("workflow_name")).join(workflows, workflows.c.id == runs.c.workflow_id)


def _error(error_type: str | None, message: str | None) -> dict[str, Any] | None:
    if error_type is None and message is None:
        return None
    return {"type": error_type, "message": message}


def run_summary(row: Any) -> dict[str, Any]:
    """One `run list --json` object from a runs row joined with the workflow's name."""
    finished = row["finished_at"]
    end = finished or utcnow()
    record = f"{row['record_type']}:{row['record_id']}" if row["record_type"] else None
    return {
        "id": row["id"], "workflow_id": row["workflow_id"], "workflow_name": row["workflow_name"],
        "version": row["version"], "status": row["status"], "triggered_at": iso(row["triggered_at"]),
        "finished_at": iso(finished),
        "duration_seconds": round(max(0.0, (end - row["triggered_at"]).total_seconds()), 3),
        "trigger": {"kind": row["trigger_kind"], "record": record},
        "error": _error(row["error_type"], row["error_message"]),
    }


def step_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"], "node_id": row["node_id"], "type": row["node_type"], "status": row["status"],
        "attempt": row["attempt"], "started_at": iso(row["started_at"]), "finished_at": iso(row["finished_at"]),
        "input": row["input"], "output": row["output"], "error": _error(row["error_type"], row["error_message"]),
    }


def run_detail(conn: Connection, run_id: int) -> dict[str, Any]:
    """The `run show --json` object, with every attempt of every step in execution order."""
    row = conn.execute(_run_query().where(runs.c.id == run_id)).mappings().first()
    if row is None:
        raise NotFound(f"there is no run {run_id}")
    detail = run_summary(row)
    rows = conn.execute(select(steps).where(steps.c.run_id == run_id).order_by(steps.c.seq, steps.c.id)).mappings()
    detail["steps"] = [step_json(s) for s in rows]
    return detail


def list_runs(conn: Connection, *, workflow_id: int | None = None, status: str | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
    """`run list --json` objects, newest first."""
    query = _run_query().order_by(runs.c.id.desc())
    if workflow_id is not None:
        query = query.where(runs.c.workflow_id == workflow_id)
    if status is not None:
        query = query.where(runs.c.status == status)
    if limit is not None:
        query = query.limit(limit)
    return [run_summary(r) for r in conn.execute(query).mappings()]


def describe_trigger(conn: Connection, run_row: Any) -> str:
    """What started a run, in words: "Patient Ann Smith (patient:12)", "Schedule 09:00", ..."""
    kind = run_row["trigger_kind"]
    if run_row["record_type"]:
        return describe(conn, RecordRef(run_row["record_type"], int(run_row["record_id"])))
    data = run_row["trigger_data"] or {}
    if kind == "schedule" and isinstance(data, dict) and data.get("fire_time"):
        from app.store.timeutil import parse_datetime

        return f"Schedule {parse_datetime(data['fire_time']).astimezone().strftime('%H:%M')}"
    if kind == "webhook":
        return "Webhook"
    if kind == "manual":
        return f"Started by {run_row['started_by']}" if run_row["started_by"] else "Manual"
    return kind.replace("_", " ").capitalize()
