"""The practice's records: patients, appointments, tasks and recalls.

Every change goes through `add_record` / `update_record` / `append_line`, which write the
record event and the history entry in the caller's transaction, so an event exists exactly
when the change does. Functions take a `Connection`; the caller owns the transaction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import (
    Boolean,
    Connection,
    Executable,
    Integer,
    String,
    Table,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)

from app.workflow.context import with_article
from app.workflow.records import (
    CONSENT_FIELDS,
    DEFAULT_COUNTRY,
    DEFAULT_STATUS,
    RECORD_FIELDS,
    RECORD_TYPES,
    FieldKind,
    FieldSpec,
    TextFormat,
    field_spec,
)
from app.workflow.vocabulary import RecordEvent, RunStatus

from . import hot
from . import values as checks
from .deferred import deferred
from .errors import InvalidRecord, NotFound
from .history import record_action
from .schema import RECORD_TABLES, history, record_events, runs, wait_follows
from .settings import practice_country
from .timeutil import iso, utcnow
from .types import JSONData, UTCDateTime
from .values import ValueProblem

# Ids are 32-bit integers on both engines; a larger one names no record (and PostgreSQL
# would refuse to even compare it).
MAX_ID: Final = 2**31 - 1
_REF: Final = re.compile(r"^(patient|appointment|task|recall):(\d+)$")
# A status change that is also an event of its own, besides `updated`.
STATUS_EVENTS: Final[dict[str, frozenset[str]]] = {
    "appointment": frozenset({RecordEvent.BOOKED, RecordEvent.CANCELLED, RecordEvent.COMPLETED,
                              RecordEvent.NO_SHOW}),
    "recall": frozenset({RecordEvent.DUE}),
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
                f"'{text}' is not a record reference "
                f"(use TYPE:ID with TYPE one of {', '.join(RECORD_TYPES)}, e.g. patient:12)")
        return cls(match.group(1), int(match.group(2)))


def check_record_type(record_type: str) -> Table:
    if record_type not in RECORD_TABLES:
        raise InvalidRecord(f"unknown record type '{record_type}' (use {', '.join(RECORD_TYPES)})")
    return RECORD_TABLES[record_type]


def parse_value(record_type: str, name: str, raw: Any, *, country: str = DEFAULT_COUNTRY) -> Any:
    """A field value checked and typed for storage; text from the command line or a form
    is accepted. `country` reads national phone numbers (see `settings.practice_country`)."""
    spec = field_spec(record_type, name)
    if spec is None:
        known = ", ".join(s.name for s in RECORD_FIELDS[record_type] if s.editable)
        raise InvalidRecord(f"{with_article(record_type)} has no field '{name}' (fields: {known})")
    if not spec.editable:
        raise InvalidRecord(f"{record_type} field '{name}' cannot be set")
    try:
        return _typed(record_type, spec, raw, country)
    except ValueProblem as problem:
        raise InvalidRecord(f"{record_type} field '{name}'{' ' if problem.of_field else ': '}{problem}") from None


def _typed(record_type: str, spec: FieldSpec, raw: Any, country: str) -> Any:
    if spec.kind is FieldKind.BOOLEAN:  # never empty: a consent field is true or false
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            raise ValueProblem("must be true or false", of_field=True)
        return checks.parse_bool(raw)
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        if spec.required:
            raise ValueProblem("cannot be empty", of_field=True)
        return None
    if spec.kind is FieldKind.TEXT:
        text = checks.check_text(raw, getattr(RECORD_TABLES[record_type].c[spec.name].type, "length", None))
        if spec.format is TextFormat.EMAIL:
            return checks.check_email(text)
        if spec.format is TextFormat.PHONE:
            return checks.normalise_phone(text, country)
        return text
    if spec.kind is FieldKind.INTEGER:
        number = checks.check_integer(raw)
        if not 0 <= number <= MAX_ID:
            if spec.references:
                raise ValueProblem(f"there is no {spec.references}:{number}")
            raise ValueProblem(f"{number} is out of range (0 to {MAX_ID})")
        return number
    if spec.kind is FieldKind.DATE:
        return checks.check_date(raw)
    if spec.kind is FieldKind.DATETIME:
        return checks.check_datetime(raw)
    if spec.kind is FieldKind.CHOICE:
        if str(raw) not in spec.choices:
            raise ValueProblem(f"{checks.shown(raw)} is not one of {', '.join(spec.choices)}")
        return str(raw)
    raise AssertionError(spec.kind)


def _country_for(conn: Connection, record_type: str, names: Any) -> str:
    """The practice's country, read only when a phone number is among the values."""
    for name in names:
        spec = field_spec(record_type, name)
        if spec is not None and spec.format is TextFormat.PHONE:
            gathered = deferred(conn)
            if gathered is None:
                return practice_country(conn)
            # The runtime's batch reads the setting once for all its changes.
            if COUNTRY_MEMO not in gathered.memo:
                gathered.memo[COUNTRY_MEMO] = practice_country(conn)
            country: str = gathered.memo[COUNTRY_MEMO]
            return country
    return DEFAULT_COUNTRY


def parse_values(conn: Connection, record_type: str, raw_values: dict[str, Any]) -> dict[str, Any]:
    """Every value checked and typed (see `parse_value`) before anything is written."""
    country = _country_for(conn, record_type, raw_values)
    return {name: parse_value(record_type, name, raw, country=country) for name, raw in raw_values.items()}


# Statements built once and given their values when executed: building a statement costs
# more than SQLite takes to run it, and the runtime writes records on its hot path.
_ROW: Final = {kind: select(t).where(t.c.id == bindparam("the_id")) for kind, t in RECORD_TABLES.items()}
_ROW_LOCKED: Final = {kind: query.with_for_update(key_share=True) for kind, query in _ROW.items()}
_EXISTS: Final = {kind: select(t.c.id).where(t.c.id == bindparam("the_id")) for kind, t in RECORD_TABLES.items()}
_INSERT_ROW: Final = {kind: insert(t).returning(t.c.id) for kind, t in RECORD_TABLES.items()}
_UPDATE_ROW: Final = {kind: update(t).where(t.c.id == bindparam("the_id")) for kind, t in RECORD_TABLES.items()}
_INSERT_EVENT: Final = insert(record_events)
COUNTRY_MEMO: Final = "country"


def _check_references(conn: Connection, record_type: str, values: dict[str, Any]) -> None:
    gathered = deferred(conn)
    for name, value in values.items():
        spec = field_spec(record_type, name)
        if (spec and spec.references and value is not None
                and not (gathered is not None and gathered.sole_writer and (spec.references, value) in gathered.rows)
                and conn.execute(_EXISTS[spec.references], {"the_id": value}).first() is None):
            raise InvalidRecord(f"{record_type} field '{name}': there is no {spec.references}:{value}")


def caused_by(actor: str) -> int | None:
    """The run that makes a change (its actor is `run:<id>`), else None: a person or a system."""
    if actor.startswith("run:") and actor[4:].isdigit():
        return int(actor[4:])
    return None


def _emit(conn: Connection, ref: RecordRef, events: list[str], actor: str, changes: dict[str, Any] | None) -> None:
    """The change's events, in order, in one execution."""
    now = utcnow()
    rows = [{"record_type": ref.type, "record_id": ref.id, "event": str(event), "changes": changes, "actor": actor,
             "occurred_at": now, "dispatched": False, "caused_by_run": caused_by(actor)} for event in events]
    gathered = deferred(conn)
    if gathered is not None:
        gathered.events.extend(rows)  # inserted with the batch's others, before it commits
        return
    conn.execute(_INSERT_EVENT, rows)


# Waiting runs whose `until` wait follows this record fall due now: the runtime computes
# their due time again from the record as it is (DESIGN section 3, `logic.wait`). Written in
# the same transaction as the change, so no reminder can fire on the old time after it.
# A wait follows the records its expression reads (`wait_follows`, written as it begins).
_FOLLOW: Final = (update(runs).where(
    runs.c.id.in_(select(wait_follows.c.run_id).where(wait_follows.c.record_type == bindparam("f_type"),
                                                      wait_follows.c.record_id == bindparam("f_id"))),
    runs.c.wait_follows_record.is_(True), runs.c.status == RunStatus.WAITING)
    .values(due_at=bindparam("f_now"), updated_at=bindparam("f_now")))


def _wake_followers(conn: Connection, ref: RecordRef) -> None:
    # On PostgreSQL a trigger does it (migration 0005), as the table owner: staff may update
    # records but not runs, and the change and the wake still share one transaction.
    if conn.dialect.name != "postgresql":
        gathered = deferred(conn)
        if gathered is not None:
            # The runtime wakes them once per run, before it saves the run (`wake_followers`).
            if gathered.follows:
                gathered.changed[(ref.type, ref.id)] = None
            return
        conn.execute(_FOLLOW, {"f_type": ref.type, "f_id": ref.id, "f_now": utcnow()})


def wake_followers(conn: Connection, changed: list[tuple[str, int]]) -> None:
    """`_wake_followers` for several records at once (one executemany; SQLite only)."""
    if changed:
        now = utcnow()
        conn.execute(_FOLLOW, [{"f_type": kind, "f_id": record_id, "f_now": now} for kind, record_id in changed])


def _consent_history(conn: Connection, ref: RecordRef, changes: dict[str, list[Any]], actor: str,
                     via: str | None) -> None:
    """A consent field's change is also kept as `patient.opt_out`, with who and how."""
    changed = {k: v for k, v in changes.items() if k in CONSENT_FIELDS}
    if ref.type == "patient" and changed:
        how = via or ("workflow" if caused_by(actor) is not None else "app or command line")
        record_action(conn, actor, "patient.opt_out", str(ref),
                      {"changes": changed, "via": how})


def add_record(conn: Connection, record_type: str, values: dict[str, Any], actor: str,
               *, created_by_run: int | None = None) -> RecordRef:
    """Create a record with its `created` event (and status event) and history entry."""
    check_record_type(record_type)
    typed = parse_values(conn, record_type, values)
    missing = [s.name for s in RECORD_FIELDS[record_type] if s.required and typed.get(s.name) is None]
    if missing:
        raise InvalidRecord(f"{with_article(record_type)} needs {', '.join(missing)}")
    if record_type in DEFAULT_STATUS and typed.get("status") is None:
        typed["status"] = DEFAULT_STATUS[record_type]
    if record_type == "patient":
        typed["created_at"] = typed["updated_at"] = utcnow()
        for name in CONSENT_FIELDS:  # false unless given (DESIGN section 4)
            if typed.get(name) is None:
                typed[name] = False
    if record_type == "task" and created_by_run is not None:
        typed["created_by_run"] = created_by_run
    shown = {k: _jsonable(v) for k, v in typed.items() if k not in ("created_at", "updated_at")}
    if conn.dialect.name == "postgresql":
        ref = _add_in_one_statement(conn, record_type, typed, shown, actor)
        if ref is not None:
            return ref
        # No row: a referenced record is missing (say which), or it was deleted just
        # after the check inside the statement and the plain path below says so.
        _check_references(conn, record_type, typed)
    else:
        _check_references(conn, record_type, typed)
    new_id = hot.scalar(conn, _INSERT_ROW[record_type], typed)
    ref = RecordRef(record_type, new_id)
    status_event = typed.get("status") in STATUS_EVENTS.get(record_type, ())
    _emit(conn, ref, [RecordEvent.CREATED, typed["status"]] if status_event else [RecordEvent.CREATED], actor, shown)
    record_action(conn, actor, "record.add", str(ref), shown)
    return ref


def _current(conn: Connection, ref: RecordRef, query: Executable) -> Mapping[Any, Any] | None:
    """The record's row as it is now; from the runtime batch's own knowledge when it has it."""
    if ref.id > MAX_ID:
        return None
    gathered = deferred(conn)
    if gathered is not None:
        return gathered.known_row(conn, ref.type, ref.id, query)
    return conn.execute(query, {"the_id": ref.id}).mappings().first()


def update_record(conn: Connection, ref: RecordRef, values: dict[str, Any], actor: str,
                  *, via: str | None = None, current: Mapping[str, Any] | None = None) -> dict[str, list[Any]]:
    """Change fields; writes `updated` (and a status event) only if something changed.

    Returns the changes as {field: [old, new]} (JSON-ready). `via` says how a consent
    change arrived (e.g. "SMS reply") for its history entry. `current`: the row as the
    caller just read it in this transaction (`append_line`), not read again.
    """
    table = check_record_type(ref.type)
    if conn.dialect.name == "postgresql" and len(values) == 1 and ref.id <= MAX_ID:
        changes = _update_in_one_statement(conn, table, ref, values, actor)
        if changes is not None:
            _wake_followers(conn, ref)
            return changes
    # A missing record is the first thing to say: its fields are moot.
    if current is None:
        current = _current(conn, ref, _ROW[ref.type])
    if current is None:
        raise NotFound(f"there is no {ref}")
    if not values:
        raise InvalidRecord("nothing to change: give field=value")
    typed = parse_values(conn, ref.type, values)
    _check_references(conn, ref.type, typed)
    changes = {k: [_jsonable(current[k]), _jsonable(v)] for k, v in typed.items() if current[k] != v}
    if not changes:
        return {}
    if ref.type == "patient":
        typed["updated_at"] = utcnow()
    hot.execute(conn, _UPDATE_ROW[ref.type], {**typed, "the_id": ref.id})
    gathered = deferred(conn)
    known = gathered.rows.get((ref.type, ref.id)) if gathered is not None else None
    if gathered is not None and known is not None and known is current:
        gathered.rows[(ref.type, ref.id)] = {**known, **typed}  # the row as it is now
    events: list[str] = [RecordEvent.UPDATED]
    if "status" in changes and typed["status"] in STATUS_EVENTS.get(ref.type, ()):
        events.append(typed["status"])
    if ref.type == "appointment" and "starts_at" in changes:
        events.append(RecordEvent.RESCHEDULED)  # (a date-time: never the one-statement path above)
    _emit(conn, ref, events, actor, changes)
    record_action(conn, actor, "record.update", str(ref), changes)
    _consent_history(conn, ref, changes, actor, via)
    _wake_followers(conn, ref)
    return changes


def append_line(conn: Connection, ref: RecordRef, name: str, line: str, actor: str) -> dict[str, list[Any]]:
    """Add `line` at the end of a text field (after a newline unless the field is empty),
    as `update_record` would set it, with its events and history entry.

    The current text is read under the row's lock, so two writers appending at the same
    moment both keep their line. Returns the changes as {field: [old, new]}.
    """
    table = check_record_type(ref.type)
    spec = field_spec(ref.type, name)
    if spec is None or spec.kind is not FieldKind.TEXT:
        raise InvalidRecord(f"{with_article(ref.type)} has no text field '{name}'")
    # A field with a format (email, phone), a length limit, a blank line or a NUL goes
    # through `update_record`'s checks instead.
    one_statement = (conn.dialect.name == "postgresql" and ref.id <= MAX_ID and line.strip() != ""
                     and "\x00" not in line and spec.format is None
                     and getattr(table.c[name].type, "length", None) is None)
    if one_statement:
        row = conn.execute(_append_statement(ref.type, name), {
            "the_id": ref.id, "line": line, "record_type": ref.type, "actor": actor, "at": utcnow(),
            "subject": str(ref), "caused_by_run": caused_by(actor)}).first()
        if row is None:
            raise NotFound(f"there is no {ref}")
        _wake_followers(conn, ref)
        return {name: [row.old_value, row.new_value]}
    # Read under the row's lock (SQLite: the write transaction is the only writer anyway).
    current = _current(conn, ref, _ROW_LOCKED[ref.type])
    if current is None:
        raise NotFound(f"there is no {ref}")
    text = f"{current[name]}\n{line}" if current[name] else line
    return update_record(conn, ref, {name: text}, actor, current=current)


# --- PostgreSQL: a change, its events and its history entry in one round trip -----------
#
# The runtime writes records on its hot path (create task, update record, add note), where
# each statement costs a round trip to the server. These build one statement (data-modifying
# CTEs) per shape, once; the SQLite path above stays plain (its statements cost no trip).

_STATEMENTS: Final[dict[tuple[Any, ...], Executable]] = {}
_EVENT_COLUMNS: Final = ["record_type", "record_id", "event", "changes", "actor", "occurred_at", "dispatched",
                         "caused_by_run"]
_HISTORY_COLUMNS: Final = ["at", "actor", "action", "subject", "detail"]
# Kinds whose stored value is its own JSON (text, number), so PostgreSQL can write the old
# value into the event exactly as `_jsonable` would.
_JSON_AS_STORED: Final = (FieldKind.TEXT, FieldKind.INTEGER, FieldKind.CHOICE)


def _param(name: str, type_: Any) -> Any:
    return bindparam(name, type_=type_)


def _reference_checks(record_type: str, values: dict[str, Any]) -> list[Any]:
    """Conditions that each referenced record exists (given as {field: bound value})."""
    checks = []
    for name, value in values.items():
        spec = field_spec(record_type, name)
        if spec and spec.references:
            target = RECORD_TABLES[spec.references]
            checks.append(or_(value.is_(None), exists().where(target.c.id == value)))
    return checks


def _add_statement(record_type: str, names: list[str], status_event: bool) -> Executable:
    key = ("add", record_type, tuple(names), status_event)
    if key not in _STATEMENTS:
        table = RECORD_TABLES[record_type]
        bound = {n: _param(f"v_{n}", table.c[n].type) for n in names}
        source = select(*bound.values())
        checks = _reference_checks(record_type, bound)
        if checks:
            source = source.where(*checks)
        row = insert(table).from_select(names, source).returning(table.c.id).cte("new_row")
        events = [literal(RecordEvent.CREATED.value)] + ([_param("status_event", String)] if status_event else [])
        ctes = [_events_cte(row, row.c.id, events, _param("shown", JSONData))]
        subject = literal(f"{record_type}:") + cast(row.c.id, String)
        ctes.append(_history_cte(row, "record.add", subject, _param("shown", JSONData)))
        _STATEMENTS[key] = select(row.c.id).add_cte(*ctes)
    return _STATEMENTS[key]


def _events_cte(source: Any, record_id: Any, events: list[Any], changes: Any) -> Any:
    """The events of one change, inserted in the order given (ids follow it)."""
    rows = [select(literal(n).label("n"), _param("record_type", String).label("record_type"),
                   record_id.label("record_id"), event.label("event"), changes.label("changes"),
                   _param("actor", String).label("actor"), _param("at", UTCDateTime()).label("occurred_at"),
                   literal(False, Boolean).label("dispatched"),
                   _param("caused_by_run", Integer).label("caused_by_run")).select_from(source)
            for n, event in enumerate(events)]
    both = (rows[0] if len(rows) == 1 else union_all(*rows)).subquery("events")
    values = select(*[both.c[name] for name in _EVENT_COLUMNS]).order_by(both.c.n)
    return insert(record_events).from_select(_EVENT_COLUMNS, values).cte("record_event")


def _history_cte(source: Any, action: str, subject: Any, detail: Any) -> Any:
    values = select(_param("at", UTCDateTime()), _param("actor", String), literal(action), subject,
                    detail).select_from(source)
    return insert(history).from_select(_HISTORY_COLUMNS, values).cte("history_entry")


def _add_in_one_statement(conn: Connection, record_type: str, typed: dict[str, Any], shown: dict[str, Any],
                          actor: str) -> RecordRef | None:
    """The record, its events and history entry in one statement; None if a referenced
    record is missing (nothing was written)."""
    status_event = typed.get("status") in STATUS_EVENTS.get(record_type, ())
    names = sorted(typed)
    params = {f"v_{n}": typed[n] for n in names}
    params.update(record_type=record_type, shown=shown, actor=actor, at=utcnow(), caused_by_run=caused_by(actor))
    if status_event:
        params["status_event"] = typed["status"]
    new_id = conn.execute(_add_statement(record_type, names, status_event), params).scalar()
    return None if new_id is None else RecordRef(record_type, new_id)


def _update_statement(record_type: str, name: str, status_event: bool) -> Executable:
    key = ("update", record_type, name, status_event)
    if key not in _STATEMENTS:
        table = RECORD_TABLES[record_type]
        column = table.c[name]
        value = _param("value", column.type)
        # Lock as the UPDATE itself would (NO KEY: inserts referencing the row go on), and
        # read the current value after any concurrent change committed, like the UPDATE.
        old = (select(table.c.id, column.label("old_value"))
               .where(table.c.id == _param("record_id", table.c.id.type), column.is_distinct_from(value),
                      *_reference_checks(record_type, {name: value}))
               .with_for_update(key_share=True).cte("old_row"))
        new_values: dict[str, Any] = {name: value}
        if "updated_at" in table.c:
            new_values["updated_at"] = _param("at", UTCDateTime())
        changed = (update(table).where(table.c.id == old.c.id).values(new_values)
                   .returning(old.c.old_value).cte("changed_row"))
        changes = func.jsonb_build_object(literal(name), func.jsonb_build_array(changed.c.old_value,
                                                                                _param("new_json", JSONData)))
        events = [literal(RecordEvent.UPDATED.value)] + ([value] if status_event else [])
        ctes = [old, changed, _events_cte(changed, _param("record_id", Integer), events, changes)]
        ctes.append(_history_cte(changed, "record.update", _param("subject", String), changes))
        _STATEMENTS[key] = select(changed.c.old_value).add_cte(*ctes)
    return _STATEMENTS[key]


def _update_in_one_statement(conn: Connection, table: Table, ref: RecordRef, values: dict[str, Any],
                             actor: str) -> dict[str, list[Any]] | None:
    """One field changed with its events and history entry in one statement. None when
    the plain path must answer: nothing changed, the record or a referenced one is
    missing, the value is invalid (the missing record is said first), or the field's
    stored value is not its own JSON."""
    ((name, raw),) = values.items()
    spec = field_spec(ref.type, name)
    if spec is None or spec.kind not in _JSON_AS_STORED:
        return None
    try:
        value = parse_value(ref.type, name, raw, country=_country_for(conn, ref.type, values))
    except InvalidRecord:
        return None
    status_event = name == "status" and value in STATUS_EVENTS.get(ref.type, ())
    row = conn.execute(_update_statement(ref.type, name, status_event), {
        "record_id": ref.id, "value": value, "new_json": _jsonable(value), "record_type": ref.type,
        "actor": actor, "at": utcnow(), "subject": str(ref), "caused_by_run": caused_by(actor),
    }).first()
    if row is None:
        return None
    return {name: [_jsonable(row[0]), _jsonable(value)]}


def _append_statement(record_type: str, name: str) -> Executable:
    key = ("append", record_type, name)
    if key not in _STATEMENTS:
        table = RECORD_TABLES[record_type]
        column = table.c[name]
        line = _param("line", column.type)
        old = (select(table.c.id, column.label("old_value")).where(table.c.id == _param("the_id", Integer))
               .with_for_update(key_share=True).cte("old_row"))
        text = case((or_(old.c.old_value.is_(None), old.c.old_value == ""), line),
                    else_=old.c.old_value + literal("\n") + line)
        new_values: dict[str, Any] = {name: text}
        if "updated_at" in table.c:
            new_values["updated_at"] = _param("at", UTCDateTime())
        changed = (update(table).where(table.c.id == old.c.id).values(new_values)
                   .returning(old.c.old_value, column.label("new_value")).cte("changed_row"))
        changes = func.jsonb_build_object(literal(name), func.jsonb_build_array(changed.c.old_value,
                                                                                changed.c.new_value))
        updated = [literal(RecordEvent.UPDATED.value)]
        ctes = [old, changed, _events_cte(changed, _param("the_id", Integer), updated, changes),
                _history_cte(changed, "record.update", _param("subject", String), changes)]
        _STATEMENTS[key] = select(changed.c.old_value, changed.c.new_value).add_cte(*ctes)
    return _STATEMENTS[key]


def get_record(conn: Connection, ref: RecordRef) -> dict[str, Any]:
    check_record_type(ref.type)
    row = conn.execute(_ROW[ref.type], {"the_id": ref.id}).mappings().first() if ref.id <= MAX_ID else None
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
    """Records of one type by id; `search` matches any text field (case-insensitive), as
    literal text: `%` and `_` are ordinary characters."""
    table = check_record_type(record_type)
    query = select(table).order_by(table.c.id)
    if search:
        text_columns = [table.c[s.name] for s in RECORD_FIELDS[record_type]
                        if s.kind in (FieldKind.TEXT, FieldKind.CHOICE)]
        query = query.where(or_(*(func.lower(c).contains(search.lower(), autoescape=True) for c in text_columns)))
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


def patient_name(patient: Mapping[str, Any] | None) -> str:
    """"Ann Smith"; "" for no patient."""
    if not patient:
        return ""
    return f"{patient.get('first_name') or ''} {patient.get('last_name') or ''}".strip()


def record_in_words(ref: RecordRef, record: Mapping[str, Any] | None, patient: Mapping[str, Any] | None) -> str:
    """A record in words, e.g. "Patient Ann Smith (patient:12)" — the one way a record is
    named for people (app.api reads many at once with it). `patient` is the record's patient
    (ignored for a patient), `record` None when it was deleted."""
    if record is None:
        return f"{ref.type.capitalize()} {ref} (deleted)"
    who = patient_name(record if ref.type == "patient" else patient)
    if ref.type == "patient":
        return f"Patient {who} ({ref})"
    if ref.type == "appointment":
        when = record["starts_at"].astimezone().strftime("%Y-%m-%d %H:%M")
        return f"Appointment of {who} on {when} ({ref})"
    if ref.type == "task":
        return f"Task '{record['title']}'{' for ' + who if who else ''} ({ref})"
    return f"Recall {record['recall_type']} of {who} ({ref})"


def describe(conn: Connection, ref: RecordRef) -> str:
    """A record in words, read from the database (see `record_in_words`)."""
    record = find_record(conn, ref)
    patient_id = record.get("patient_id") if record is not None and ref.type != "patient" else None
    patient = find_record(conn, RecordRef("patient", patient_id)) if patient_id is not None else None
    return record_in_words(ref, record, patient)
