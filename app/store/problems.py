"""Stored record values that fail today's checks: flagged for a person, never changed.

Records stored before values were checked (DESIGN section 4) may hold an email that is
not an address, a mobile that is not a phone number, or a date in year 1. Migration 0003
fills `record_problems` from them with `flag_stored_problems`; `list_record_problems`
says which are still there (a record corrected or deleted since drops out of the list).
The scan names its columns itself, so it reads a database at any revision from 0002 on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import Connection, Text, cast, column, insert, select, table

from app.workflow.records import EARLIEST_DATE, LATEST_DATE, RECORD_FIELDS, FieldKind, TextFormat

from .schema import record_problems
from .settings import practice_country
from .timeutil import utcnow
from .values import BOUNDS, ValueProblem, check_email, normalise_phone, shown

# The fields whose stored values can fail a check, per record type (with their kind).
CHECKED_FIELDS: Final[dict[str, tuple[tuple[str, FieldKind, TextFormat | None], ...]]] = {
    record_type: tuple((s.name, s.kind, s.format) for s in specs
                       if s.format is not None or s.kind in (FieldKind.DATE, FieldKind.DATETIME))
    for record_type, specs in RECORD_FIELDS.items()
}
_TABLE_NAMES: Final = {"patient": "patients", "appointment": "appointments", "task": "tasks", "recall": "recalls"}
_CHUNK: Final = 500  # ids per IN (...) list: SQLite caps the number of bound values


@dataclass(frozen=True)
class RecordProblem:
    record_type: str
    record_id: int
    field: str
    value: str | None
    problem: str
    found_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.record_type}:{self.record_id}"

    def __str__(self) -> str:
        return f"{self.ref} field '{self.field}': {self.problem}"


def problem_of(kind: FieldKind, text_format: TextFormat | None, value: str, country: str) -> str | None:
    """Why a stored value (as text) fails today's checks, or None."""
    if text_format is TextFormat.EMAIL:
        try:
            check_email(value)
        except ValueProblem as problem:
            return str(problem)
        return None
    if text_format is TextFormat.PHONE:
        try:
            normal = normalise_phone(value, country)
        except ValueProblem as problem:
            return str(problem)
        return None if normal == value else f"{shown(value)} is not in E.164 (it would be stored as {normal})"
    # Dates and date-times as the database writes them: "0001-01-01 12:00:00+00" on
    # PostgreSQL, "0001-01-01 12:00:00.000000" on SQLite; PostgreSQL adds " BC" before year 1.
    try:
        day = date.fromisoformat(value.strip()[:10])
    except ValueError:
        return f"{shown(value)} is not a date"
    if value.rstrip().endswith(" BC") or not EARLIEST_DATE <= day <= LATEST_DATE:
        return f"{shown(value)} is not {BOUNDS}"
    return None


def scan(conn: Connection,
         record_ids: Mapping[str, Iterable[int]] | None = None) -> Iterator[tuple[str, int, str, str, str]]:
    """(record type, id, field, value, problem) for each stored value failing the checks;
    `record_ids` limits the scan to those records."""
    country = practice_country(conn)
    for record_type, fields in CHECKED_FIELDS.items():
        if not fields or (record_ids is not None and record_type not in record_ids):
            continue
        names = ["id", *(name for name, _, _ in fields)]
        rows = table(_TABLE_NAMES[record_type], *(column(n) for n in names))
        query = select(rows.c.id, *(cast(rows.c[name], Text).label(name) for name, _, _ in fields)).order_by(rows.c.id)
        if record_ids is None:
            batches: list[Any] = [query]
        else:
            ids = sorted(set(record_ids[record_type]))
            batches = [query.where(rows.c.id.in_(ids[i:i + _CHUNK])) for i in range(0, len(ids), _CHUNK)]
        for batch in batches:
            for row in conn.execute(batch).mappings():
                for name, kind, text_format in fields:
                    value = row[name]
                    if value is None or value == "":
                        continue
                    problem = problem_of(kind, text_format, str(value), country)
                    if problem is not None:
                        yield record_type, int(row["id"]), name, str(value), problem


def flag_stored_problems(conn: Connection) -> int:
    """Write a `record_problems` row for each stored value failing the checks; the values
    stay untouched. Returns how many were flagged."""
    now = utcnow()
    flagged = [{"record_type": t, "record_id": i, "field": f, "value": v, "problem": p, "found_at": now}
               for t, i, f, v, p in scan(conn)]
    if flagged:
        conn.execute(insert(record_problems), flagged)
    return len(flagged)


def list_record_problems(conn: Connection, record_type: str | None = None) -> list[RecordProblem]:
    """The flagged values still stored, by record; corrected or deleted records drop out."""
    query = select(record_problems).order_by(record_problems.c.record_type, record_problems.c.record_id,
                                             record_problems.c.id)
    if record_type is not None:
        query = query.where(record_problems.c.record_type == record_type)
    flagged = [RecordProblem(r["record_type"], r["record_id"], r["field"], r["value"], r["problem"], r["found_at"])
               for r in conn.execute(query).mappings()]
    if not flagged:
        return []
    ids: dict[str, list[int]] = {}
    for problem in flagged:
        ids.setdefault(problem.record_type, []).append(problem.record_id)
    still = {(t, i, f) for t, i, f, _, _ in scan(conn, ids)}
    return [p for p in flagged if (p.record_type, p.record_id, p.field) in still]
