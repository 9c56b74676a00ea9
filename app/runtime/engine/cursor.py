"""A run's durable cursor: the nodes still to execute, the next step number, actions done,
attempts per node, steps Retry Run reuses, and the step in progress (a wait or a message)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.workflow import Workflow


@dataclass
class RunCursor:
    pending: list[str]
    seq: int
    actions: int
    attempts: dict[str, int]
    reuse: dict[str, list[int]]
    active: int | None

    @classmethod
    def load(cls, state: dict[str, Any] | None) -> RunCursor:
        state = state or {}
        return cls(list(state.get("pending") or []), int(state.get("seq") or 0), int(state.get("actions") or 0),
                   dict(state.get("attempts") or {}), {k: list(v) for k, v in (state.get("reuse") or {}).items()},
                   state.get("active"))

    def dump(self) -> dict[str, Any]:
        state: dict[str, Any] = {"pending": list(self.pending), "seq": self.seq, "actions": self.actions,
                                 "attempts": dict(self.attempts)}
        if any(self.reuse.values()):
            state["reuse"] = {k: list(v) for k, v in self.reuse.items() if v}
        if self.active is not None:
            state["active"] = self.active
        return state

    def copy(self) -> RunCursor:
        return RunCursor(list(self.pending), self.seq, self.actions, dict(self.attempts),
                         {k: list(v) for k, v in self.reuse.items()}, self.active)

    def advance(self, workflow: Workflow, node_id: str, port: str) -> None:
        """The node is done: follow its edges (file order) for the port it took."""
        if self.pending and self.pending[0] == node_id:
            self.pending.pop(0)
        self.pending[0:0] = [e.target for e in workflow.outgoing(node_id) if e.port == port]

    def next_attempt(self, node_id: str) -> int:
        return self.attempts.get(node_id, 0) + 1
