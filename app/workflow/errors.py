"""Named errors of the workflow model, each carrying problems that name a node and field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a workflow, said so a designer can find and fix it."""

    message: str
    node_id: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = []
        if self.node_id is not None:
            where.append(f"node '{self.node_id}'")
        if self.field:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class WorkflowError(ValueError):
    """A workflow that cannot be accepted; `problems` lists every reason at once."""

    # A message lists this many problems and counts the rest, so it stays readable.
    SHOWN: ClassVar[int] = 20

    def __init__(self, problems: list[Problem], summary: str) -> None:
        self.problems = list(problems)
        detail = "; ".join(str(p) for p in self.problems[: self.SHOWN])
        if len(self.problems) > self.SHOWN:
            detail += f"; and {len(self.problems) - self.SHOWN} more"
        message = f"{summary}: {detail}" if detail else summary
        # One line whatever a file's keys and values hold.
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))


class WorkflowFileError(WorkflowError):
    """The file is not a valid clinicflow.workflow/1 document (refused at import/update)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems, "Invalid workflow file")


class WorkflowNotPublishableError(WorkflowError):
    """The draft is well-formed but cannot be published yet."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems, "Cannot publish")


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered; says which field and why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"Template error in '{field}': {reason}")


# The name other layers import and catch.
WorkflowNotPublishable = WorkflowNotPublishableError
