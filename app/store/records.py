"""The practice's records: patients, appointments, tasks and recalls.

Every change goes through `add_record` / `update_record`, which write the record event
and the history entry in the caller's transaction, so an event exists exactly when the
change does. Functions take a `Connection`; the caller owns the transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import Connection, Table, func, insert, or_, select, update

from app.workflow.context import with_article
from app.workflow.records import (
    DEFAULT_STATUS, RECORD_FIELDS, RECORD_TYPES, FieldKind, FieldSpec, field_spec,
)

from .errors import InvalidRecord, NotFound
from .history import record_action
from .schema import RECORD_TABLES, record_events
from .timeutil import iso, parse_date, parse_datetime, utcnow

# Ids are 32-bit integers on both engines; a larger one names no record (and PostgreSQL
# would refuse to even compare it).
MAX_ID: Final = 2**31 - 1
_REF: Final = re.compile(r"^(patient|appointment|task|recall):(\d+)$")
# A status change that is also an event of its own, besides `updated`.
STATUS_EVENTS: Final = {
    "appointment": {"booked", "cancelled", "completed", "no_show"},
    "recall": {"due"},
}


@dataclass(frozen=True, order=True)
class RecordRef:
    type: str
    id: int

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> RecordRef:
        match = _REF.match(text.strip())
        if not match:
            raise InvalidRecord(
                f"'{text}' is not a record reference (use TYPE:ID with TYPE one of {', '.join(RECORD_TYPES)}, e.g. patient:12)")
        return cls(match.group(1), int(match.group(2)))


def check_record_type(record_type: str) -> Table:
    if record_type not in RECORD_TABLES:
        raise InvalidRecord(f"unknown record type '{record_type}' (use {', '.join(RECORD_TYPES)})")
    return RECORD_TABLES[record_type]


def parse_value(record_type: str, name: str, raw: Any) -> Any:
    """A field value typed for storage; text from the command line or a form is accepted."""
    spec = field_spec(record_type, name)
    if spec is None:
        known = ", ".join(s.name for s in RECORD_FIELDS[record_type] if s.editable)
        raise InvalidRecord(f"{with_article(record_type)} has no field '{name}' (fields: {known})")
    if not spec.editable:
        raise InvalidRecord(f"{record_type} field '{name}' cannot be set")
    return _typed(record_type, spec, raw)


def _typed(record_type: str, spec: FieldSpec, raw: Any) -> Any:
    where = f"{record_type} field '{spec.name}'"
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        if spec.required:
            raise InvalidRecord(f"{where} cannot be empty")
        return None
    if spec.kind is FieldKind.TEXT:
        text = str(raw)
        limit = getattr(RECORD_TABLES[record_type].c[spec.name].type, "length", None)
        if limit is not None and len(text) > limit:
            raise InvalidRecord(f"{where} is longer than {limit} characters")
        return text
    if spec.kind is FieldKind.INTEGER:
        try:
            number = int(raw)
        except (TypeError, ValueError):
            raise InvalidRecord(f"{where}: '{raw}' is not a whole number") from None
        if not 0 <= number <= MAX_ID:
            if spec.references:
                raise InvalidRecord(f"{where}: there is no {spec.references}:{number}")
            raise InvalidRecord(f"{where}: {number} is out of range (0 to {MAX_ID})")
        return number
    if spec.kind is FieldKind.DATE:
        if isinstance(raw, date) and not isinstance(raw, datetime):
            return raw
        try:
            return parse_date(str(raw))
        except ValueError:
            raise InvalidRecord(f"{where}: '{raw}' is not a date (use YYYY-MM-DD)") from None
    if spec.kind is FieldKind.DATETIME:
        if isinstance(raw, datetime):
            return raw
        try:
            return parse_datetime(str(raw))
        except ValueError:
            raise InvalidRecord(f"{where}: '{raw}' is not a date-time (use YYYY-MM-DD HH:MM, local time, or ISO 8601)") from None
    if spec.kind is FieldKind.CHOICE:
        if str(raw) not in spec.choices:
            raise InvalidRecord(f"{where}: '{raw}' is not one of {', '.join(spec.choices)}")
        return str(raw)
    raise AssertionError(spec.kind)


def _check_references(conn: Connection, record_type: str, values: dict[str, Any]) -> None:
    for name, value in values.items():
        spec = field_spec(record_type, name)
        if spec and spec.references and value is not None:
            table = RECORD_TABLES[spec.references]
            if conn.execute(select(table.c.id).where(table.c.id == value)).first() is None:
                raise InvalidRecord(f"{record_type} field '{name}': there is no {spec.references}:{value}")


def _emit(conn: Connection, ref: RecordRef, event: str, actor: str, changes: dict[str, Any] | None) -> None:
    conn.execute(insert(record_events).values(
        record_type=ref.type, record_id=ref.id, event=event, changes=changes, actor=actor,
        occurred_at=utcnow(), dispatched=False))


def add_record(conn: Connection, record_type: str, values: dict[str, Any], actor: str,
               *, created_by_run: int | None = None) -> RecordRef:
    """Create a record with its `created` event (and status event) and history entry."""
    table = check_record_type(record_type)
    typed = {name: parse_value(record_type, name, raw) for name, raw in values.items()}
    missing = [s.name for s in RECORD_FIELDS[record_type] if s.required and typed.get(s.name) is None]
    if missing:
        raise InvalidRecord(f"{with_article(record_type)} needs {', '.join(missing)}")
    if record_type in DEFAULT_STATUS and typed.get("status") is None:
        typed["status"] = DEFAULT_STATUS[record_type]
    _check_references(conn, record_type, typed)
    if record_type == "patient":
        typed["created_at"] = typed["updated_at"] = utcnow()
    if record_type == "task" and created_by_run is not None:
        typed["created_by_run"] = created_by_run
    new_id = conn.execute(insert(table).values(**typed).returning(table.c.id)).scalar_one()
    ref = RecordRef(record_type, new_id)
    shown = {k: _jsonable(v) for k, v in typed.items() if k not in ("created_at", "updated_at")}
    _emit(conn, ref, "created", actor, shown)
    if typed.get("status") in STATUS_EVENTS.get(record_type, ()):
        _emit(conn, ref, typed["status"], actor, shown)
    record_action(conn, actor, "record.add", str(ref), shown)
    return ref


def update_record(conn: Connection, ref: RecordRef, values: dict[str, Any], actor: str) -> dict[str, list[Any]]:
    """Change fields; writes `updated` (and a status event) only if something changed.

    Returns the changes as {field: [old, new]} (JSON-ready).
    """
    table = check_record_type(ref.type)
    # A missing record is the first thing to say: its fields are moot.
    current = (conn.execute(select(table).where(table.c.id == ref.id)).mappings().first()
               if ref.id <= MAX_ID else None)
    if current is None:
        raise NotFound(f"there is no {ref}")
    if not values:
        raise InvalidRecord("nothing to change: give field=value")
    typed = {name: parse_value(ref.type, name, raw) for name, raw in values.items()}
    _check_references(conn, ref.type, typed)
    changes = {k: [_jsonable(current[k]), _jsonable(v)] for k, v in typed.items() if current[k] != v}
    if not changes:
        return {}
    if ref.type == "patient":
        typed["updated_at"] = utcnow()
    conn.execute(update(table).where(table.c.id == ref.id).values(**typed))
    _emit(conn, ref, "updated", actor, changes)
    if "status" in changes and typed["status"] in STATUS_EVENTS.get(ref.type, ()):
        _emit(conn, ref, typed["status"], actor, changes)
    record_action(conn, actor, "record.update", str(ref), changes)
    return changes


def get_record(conn: Connection, ref: RecordRef) -> dict[str, Any]:
    table = check_record_type(ref.type)
    row = conn.execute(select(table).where(table.c.id == ref.id)).mappings().first() if ref.id <= MAX_ID else None
    if row is None:
        raise NotFound(f"there is no {ref}")
    return dict(row)


def find_record(conn: Connection, ref: RecordRef) -> dict[str, Any] | None:
    try:
        return get_record(conn, ref)
    except NotFound:
        return None


def list_records(conn: Connection, record_type: str, search: str | None = None,
                 limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
    """Records of one type by id; `search` matches any text field (case-insensitive)."""
    table = check_record_type(record_type)
    query = select(table).order_by(table.c.id)
    if search:
        pattern = f"%{search.lower()}%"
        text_columns = [table.c[s.name] for s in RECORD_FIELDS[record_type]
                        if s.kind in (FieldKind.TEXT, FieldKind.CHOICE)]
        query = query.where(or_(*(func.lower(c).like(pattern) for c in text_columns)))
    if limit is not None:
        query = query.limit(limit).offset(offset)
    return [dict(r) for r in conn.execute(query).mappings()]


def count_records(conn: Connection, record_type: str) -> int:
    table = check_record_type(record_type)
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return iso(value)
    return value


def record_to_json(record: dict[str, Any]) -> dict[str, Any]:
    """A record for `--json` output and run context: ISO times in UTC with offsets."""
    return {k: _jsonable(v) for k, v in record.items()}


def patient_name(patient: dict[str, Any]) -> str:
    return f"{patient.get('first_name') or ''} {patient.get('last_name') or ''}".strip()


def describe(conn: Connection, ref: RecordRef) -> str:
    """A record in words, e.g. "Patient Ann Smith (patient:12)"."""
    record = find_record(conn, ref)
    if record is None:
        return f"{ref.type.capitalize()} {ref} (deleted)"
    patient = None
    if ref.type == "patient":
        patient = record
    elif record.get("patient_id") is not None:
        patient = find_record(conn, RecordRef("patient", record["patient_id"]))
    who = patient_name(patient) if patient else ""
    if ref.type == "patient":
        return f"Patient {who} ({ref})"
    if ref.type == "appointment":
        when = record["starts_at"].astimezone().strftime("%Y-%m-%d %H:%M")
        return f"Appointment of {who} on {when} ({ref})"
    if ref.type == "task":
        return f"Task '{record['title']}'{' for ' + who if who else ''} ({ref})"
    return f"Recall {record['recall_type']} of {who} ({ref})"
