"""The history of who did what: publish, enable, disable, record changes, cancel, retry, and
what became of each message a run was to send (`message.*`, by the runtime)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, insert, or_, select

from .deferred import deferred
from .schema import history
from .timeutil import utcnow


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any] | None


# Built once: record changes write an entry each, on the runtime's hot path.
_INSERT: Final = insert(history)

# What became of a message a run was to send (DESIGN sections 13, 14), recorded by the runtime
# in the transaction that decides it. Each is kept about the run and, when the run has a
# patient, about the patient too (one entry each), so both histories answer "why not sent?".
# detail: {"step" (the node's title), "reason" (skipped, failed; held: "Quiet hours"), "until"
# (held: when it is sent, ISO), "channel" ("email" | "sms"), "node_id", "run", "patient" | None}.
MESSAGE_SENT: Final = "message.sent"        # handed over to the email server / SMS gateway
MESSAGE_SKIPPED: Final = "message.skipped"  # never sent: a messaging rule stopped it (opt-out, consent)
MESSAGE_HELD: Final = "message.held"        # not sent yet: quiet hours, sent when the window opens
MESSAGE_FAILED: Final = "message.failed"    # not sent: sending failed and the run failed
MESSAGE_ACTIONS: Final = (MESSAGE_SENT, MESSAGE_SKIPPED, MESSAGE_HELD, MESSAGE_FAILED)
# What the History panel says for them (its "What" column); its "Details" column says the
# step's title and the reason, e.g. "“Welcome email” not sent: Owen Price has opted out of email"
# (api.runs.plain_reason), "“Reminder text” held until 09/12/2026 08:00" (the locale's date).
MESSAGE_ACTION_WORDS: Final = {
    MESSAGE_SENT: "Sent a message", MESSAGE_SKIPPED: "Did not send a message",
    MESSAGE_HELD: "Held a message for quiet hours", MESSAGE_FAILED: "Could not send a message",
}


def message_entries(at: datetime, actor: str, action: str, run_id: int, patient: str | None,
                    detail: dict[str, Any]) -> list[dict[str, Any]]:
    """The history row of one message outcome: about the run, and related to its patient (the
    history of either lists it)."""
    detail = {**detail, "run": f"run:{run_id}", "patient": patient}   # what a person reads first
    return [{"at": at, "actor": actor, "action": action, "subject": f"run:{run_id}", "related": patient,
             "detail": detail}]


def record_actions(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Several entries in one statement (executemany), e.g. a batch's message outcomes."""
    if rows:
        conn.execute(_INSERT, rows)


def record_action(conn: Connection, actor: str, action: str, subject: str,
                  detail: dict[str, Any] | None = None, at: datetime | None = None) -> None:
    row = {"at": at or utcnow(), "actor": actor, "action": action, "subject": subject, "detail": detail}
    gathered = deferred(conn)
    if gathered is not None:
        gathered.add_history(row)  # inserted with the batch's others, before it commits
        return
    conn.execute(_INSERT, row)


def about(subject: str) -> ColumnElement[bool]:
    """Entries about `subject`: their subject, or the record they are also about (`related`)."""
    return or_(history.c.subject == subject, history.c.related == subject)


def history_of(conn: Connection, subject: str, limit: int = 200) -> list[HistoryEntry]:
    """Newest first."""
    rows = conn.execute(
        select(history).where(about(subject)).order_by(history.c.id.desc()).limit(limit)
    ).mappings()
    return [HistoryEntry(r["at"], r["actor"], r["action"], r["subject"], r["detail"]) for r in rows]
