"""The practice's records: list and search, get, add, update, and a record in words.

`record_in_words` (from the store, so the runtime's messages use it too) is the one way a
record is named for people ("Patient Ann Smith (patient:12)", "Appointment of Ann Smith on
2026-03-02 09:30 (appointment:4)"); the run list, the run viewer, the records browser and
the command line read it here, many records at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, func, or_, select

from app.store import records as store
from app.store.database import Database
from app.store.errors import InvalidRecord
from app.store.records import RecordRef, patient_name, record_in_words
from app.store.schema import RECORD_TABLES, patients
from app.workflow.records import RECORD_FIELDS, RECORD_TYPES, FieldKind

__all__ = [
    "RECORD_TYPES", "RecordRef", "RecordRow", "add_record", "describe_record", "get_record", "list_records",
    "parse_assignments", "patient_name", "record_in_words", "update_record",
]

# Record ids are searched by patient in batches; more than this many patients matching a
# search is not a search a person means (the Runs tab says "no runs" rather than stall).
MAX_PATIENT_MATCHES: Final = 1000


@dataclass(frozen=True)
class RecordRow:
    """One record with its fields as stored (times aware UTC) and its patient's name."""

    ref: RecordRef
    values: Mapping[str, Any]
    patient_name: str   # the patient's own name for a patient; "" when the record has none
    words: str          # `record_in_words`

    @property
    def id(self) -> int:
        return self.ref.id

    @property
    def type(self) -> str:
        return self.ref.type

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def to_json(self) -> dict[str, Any]:
        """`record show --json`: the fields of DESIGN section 4, ISO times in UTC."""
        return store.record_to_json(dict(self.values))


def load_records(conn: Connection, refs: Iterable[RecordRef]) -> dict[RecordRef, dict[str, Any]]:
    """Records and their patients, one query per record type (not one per record)."""
    wanted: dict[str, set[int]] = {}
    for ref in refs:
        if ref.type in RECORD_TABLES and 0 <= ref.id <= store.MAX_ID:
            wanted.setdefault(ref.type, set()).add(ref.id)
    found: dict[RecordRef, dict[str, Any]] = {}
    for record_type, ids in wanted.items():
        table = RECORD_TABLES[record_type]
        for row in conn.execute(select(table).where(table.c.id.in_(ids))).mappings():
            found[RecordRef(record_type, row["id"])] = dict(row)
    patient_ids = {r["patient_id"] for ref, r in found.items() if ref.type != "patient" and r.get("patient_id")}
    patient_ids -= {ref.id for ref in found if ref.type == "patient"}
    if patient_ids:
        for row in conn.execute(select(patients).where(patients.c.id.in_(patient_ids))).mappings():
            found[RecordRef("patient", row["id"])] = dict(row)
    return found


def words_for(conn: Connection, refs: Iterable[RecordRef]) -> dict[RecordRef, str]:
    """`record_in_words` for many records at once."""
    wanted = list(refs)
    found = load_records(conn, wanted)
    return {ref: in_words_from(ref, found) for ref in wanted}


def in_words_from(ref: RecordRef, found: Mapping[RecordRef, Mapping[str, Any]]) -> str:
    """`record_in_words` from records already read with `load_records`."""
    record = found.get(ref)
    patient_id = record.get("patient_id") if record is not None and ref.type != "patient" else None
    patient = found.get(RecordRef("patient", patient_id)) if patient_id is not None else None
    return record_in_words(ref, record, patient)


def _rows(conn: Connection, record_type: str, records: list[dict[str, Any]]) -> list[RecordRow]:
    refs = [RecordRef(record_type, int(r["id"])) for r in records]
    found: dict[RecordRef, Mapping[str, Any]] = dict(zip(refs, records, strict=True))
    patient_ids = {r["patient_id"] for r in records if r.get("patient_id") is not None}
    if patient_ids:
        for row in conn.execute(select(patients).where(patients.c.id.in_(patient_ids))).mappings():
            found.setdefault(RecordRef("patient", row["id"]), dict(row))
    result = []
    for ref, values in zip(refs, records, strict=True):
        patient = values if record_type == "patient" else (
            found.get(RecordRef("patient", values["patient_id"])) if values.get("patient_id") is not None else None)
        result.append(RecordRow(ref, values, patient_name(patient), in_words_from(ref, found)))
    return result


def list_records(db: Database, record_type: str, *, search: str | None = None, limit: int | None = None,
                 match_patient_names: bool = False) -> list[RecordRow]:
    """Records of one type by id; `search` matches any text field (case-insensitive), and
    with `match_patient_names` also the name of an appointment's, task's or recall's patient."""
    with db.read() as conn:
        rows = store.list_records(conn, record_type, search or None, limit=limit)
        if match_patient_names and search and record_type != "patient":
            table = RECORD_TABLES[record_type]
            name = func.lower(patients.c.first_name + " " + patients.c.last_name)
            query = (select(table).join(patients, patients.c.id == table.c.patient_id)
                     .where(name.like(f"%{search.lower()}%")).order_by(table.c.id))
            if limit is not None:
                query = query.limit(limit)
            seen = {r["id"] for r in rows}
            rows += [dict(r) for r in conn.execute(query).mappings() if r["id"] not in seen]
            rows.sort(key=lambda r: int(r["id"]))
        return _rows(conn, record_type, rows)


def get_record(db: Database, ref: RecordRef) -> RecordRow:
    """One record; `NotFound` names it."""
    with db.read() as conn:
        return _rows(conn, ref.type, [store.get_record(conn, ref)])[0]


def describe_record(db: Database, ref: RecordRef) -> str:
    with db.read() as conn:
        return words_for(conn, [ref])[ref]


def add_record(db: Database, record_type: str, values: Mapping[str, Any], actor: str) -> RecordRef:
    """A new record (its `created` event and history entry in the same transaction)."""
    with db.write() as conn:
        return store.add_record(conn, record_type, dict(values), actor)


def update_record(db: Database, ref: RecordRef, values: Mapping[str, Any], actor: str) -> dict[str, list[Any]]:
    """Change fields; returns {field: [old, new]} of what really changed (empty: nothing)."""
    with db.write() as conn:
        changes: dict[str, list[Any]] = store.update_record(conn, ref, dict(values), actor)
        return changes


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`field=value` words from the command line."""
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidRecord(f"'{item}' is not field=value")
        values[name.strip()] = value
    return values


def summary_fields(record_type: str) -> list[str]:
    """The fields a one-line listing shows (long text and bookkeeping left out)."""
    return [s.name for s in RECORD_FIELDS[record_type]
            if s.name not in ("notes", "created_at", "updated_at", "description")]


def text_fields(record_type: str) -> list[str]:
    return [s.name for s in RECORD_FIELDS[record_type] if s.kind in (FieldKind.TEXT, FieldKind.CHOICE)]


def patients_matching(conn: Connection, text: str) -> list[int]:
    """Ids of patients whose full name or email contains `text` (case-insensitive)."""
    pattern = f"%{text.lower()}%"
    full_name = func.lower(patients.c.first_name + " " + patients.c.last_name)
    query = (select(patients.c.id).where(or_(full_name.like(pattern), func.lower(patients.c.email).like(pattern)))
             .limit(MAX_PATIENT_MATCHES))
    return [int(r) for (r,) in conn.execute(query)]

