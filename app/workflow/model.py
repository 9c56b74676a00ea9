"""The workflow file format, version 1 (`clinicflow.workflow/1`), as pydantic models.

`load_workflow` is the one way in from outside (files, the database, the editor): it
checks everything a file can get wrong and reports each problem with its node and field.
`Workflow.to_dict` is the one way out.
"""

from __future__ import annotations

import json
from functools import cached_property
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError

from .catalog import CATALOG, NodeConfig, node_type
from .errors import Problem, WorkflowFileError

FORMAT: Final = "clinicflow.workflow/1"
ID_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class Limits(BaseModel):
    """Safety limits of one workflow; a missing one takes the practice's default."""

    model_config = ConfigDict(extra="forbid")
    max_runtime_seconds: int | None = Field(default=None, ge=1, le=366 * 86400)
    max_actions_per_run: int | None = Field(default=None, ge=1, le=10_000)
    max_nodes: int | None = Field(default=None, ge=1, le=10_000)


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=ID_PATTERN)
    type: str
    config: SerializeAsAny[NodeConfig]
    position: tuple[float, float] | None = None
    title: str | None = None

    @property
    def kind(self) -> str:
        return node_type(self.type).kind


class Edge(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    source: str = Field(alias="from")
    target: str = Field(alias="to")
    port: str = "out"


class Workflow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    format: str = FORMAT
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    limits: Limits | None = None
    nodes: tuple[Node, ...] = ()
    edges: tuple[Edge, ...] = ()

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    @cached_property
    def trigger(self) -> Node | None:
        """The trigger node, if there is exactly one (cached: the model is immutable and
        validation asks for it once per node)."""
        triggers = [n for n in self.nodes if n.kind == "trigger"]
        return triggers[0] if len(triggers) == 1 else None

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Workflow:
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("trigger", None)  # the cached trigger may belong to the old nodes
        return copied

    def outgoing(self, node_id: str) -> list[Edge]:
        """Edges leaving a node, in the order the runtime follows them."""
        return [e for e in self.edges if e.source == node_id]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": self.format, "name": self.name}
        if self.description:
            data["description"] = self.description
        if self.limits is not None:
            data["limits"] = self.limits.model_dump(exclude_none=True)
        data["nodes"] = []
        for node in self.nodes:
            item: dict[str, Any] = {
                "id": node.id,
                "type": node.type,
                "config": node.config.model_dump(exclude_none=True, exclude_unset=True),
            }
            if node.title:
                item["title"] = node.title
            if node.position is not None:
                item["position"] = [node.position[0], node.position[1]]
            data["nodes"].append(item)
        data["edges"] = [
            {"from": e.source, **({"port": e.port} if e.port != "out" else {}), "to": e.target}
            for e in self.edges
        ]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _problems_from(exc: ValidationError, node_id: str | None, prefix: str) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        field = _loc(tuple(err["loc"]))
        field = f"{prefix}.{field}" if prefix and field else (prefix or field)
        problems.append(Problem(_message(err), node_id, field or None))
    return problems


def _shown(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _message(err: Any) -> str:
    """Pydantic's error in a designer's words, with the value that was given."""
    kind, ctx, given = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "is required"
    if kind in ("less_than_equal", "less_than"):
        return f"must be at most {ctx.get('le', ctx.get('lt'))}, not {_shown(given)}"
    if kind in ("greater_than_equal", "greater_than"):
        return f"must be at least {ctx.get('ge', ctx.get('gt'))}, not {_shown(given)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number, not {_shown(given)}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}, not {_shown(given)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_type":
        return f"must be text, not {_shown(given)}"
    if kind == "string_pattern_mismatch" and err["loc"][-1:] == ("id",):
        return (f"{_shown(given)} is not a node id: start with a letter or '_' and use only "
                "letters, digits and '_' (at most 64)")
    return str(err["msg"]).removeprefix("Value error, ")


def load_workflow(source: str | bytes | dict[str, Any]) -> Workflow:
    """Parse a workflow file (JSON text or already-decoded data); refuse anything malformed.

    Raises `WorkflowFileError` listing every problem found, each naming its node and field.
    """
    if isinstance(source, (str, bytes)):
        try:
            data = json.loads(source)
        except json.JSONDecodeError as exc:
            raise WorkflowFileError(
                [Problem(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]
            ) from None
    else:
        data = source
    if not isinstance(data, dict):
        raise WorkflowFileError([Problem("a workflow file must be a JSON object")])

    problems: list[Problem] = []
    allowed = set(Workflow.model_fields)
    for key in data:
        if key not in allowed:
            problems.append(Problem("unknown key", None, str(key)))
    if data.get("format") != FORMAT:
        problems.append(Problem(f"must be '{FORMAT}', not {json.dumps(data.get('format'))}", None, "format"))

    nodes: list[Node] = []
    raw_nodes = data.get("nodes", [])
    if not isinstance(raw_nodes, list):
        problems.append(Problem("must be a list of nodes", None, "nodes"))
        raw_nodes = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_nodes):
        node, node_problems = _load_node(raw, index)
        problems.extend(node_problems)
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(raw_id, str):
            if raw_id in seen:
                problems.append(Problem("duplicate node id", raw_id, "id"))
                continue
            seen.add(raw_id)  # edges to a node with other problems are not reported again
        if node is not None:
            nodes.append(node)

    edges: list[Edge] = []
    raw_edges = data.get("edges", [])
    if not isinstance(raw_edges, list):
        problems.append(Problem("must be a list of edges", None, "edges"))
        raw_edges = []
    by_id = {n.id: n for n in nodes}
    for index, raw in enumerate(raw_edges):
        try:
            edge = Edge.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_problems_from(exc, None, f"edges.{index}"))
            continue
        source, target = by_id.get(edge.source), by_id.get(edge.target)
        if edge.source not in seen:
            problems.append(Problem(f"edge {index} starts at missing node '{edge.source}'", None, f"edges.{index}.from"))
        elif source is not None and edge.port not in node_type(source.type).ports_out:
            ports = ", ".join(node_type(source.type).ports_out)
            problems.append(Problem(f"has no port '{edge.port}' (ports: {ports})", edge.source, f"edges.{index}.port"))
        if edge.target not in seen:
            problems.append(Problem(f"edge {index} goes to missing node '{edge.target}'", None, f"edges.{index}.to"))
        elif target is not None and not node_type(target.type).has_input:
            problems.append(Problem("a trigger has no input; no edge may go to it", edge.target, f"edges.{index}.to"))
        edges.append(edge)

    rest = {k: v for k, v in data.items() if k in allowed and k not in ("nodes", "edges", "format")}
    workflow: Workflow | None = None
    try:
        workflow = Workflow.model_validate({**rest, "nodes": nodes, "edges": edges})
    except ValidationError as exc:
        problems.extend(_problems_from(exc, None, ""))
    if problems or workflow is None:
        raise WorkflowFileError(problems)
    return workflow


def _load_node(raw: Any, index: int) -> tuple[Node | None, list[Problem]]:
    where = f"nodes.{index}"
    if not isinstance(raw, dict):
        return None, [Problem("must be an object", None, where)]
    node_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    label = node_id if node_id is not None else None
    problems: list[Problem] = []
    for key in raw:
        if key not in Node.model_fields:
            problems.append(Problem("unknown key", label, key if label else f"{where}.{key}"))
    type_name = raw.get("type")
    if type_name not in CATALOG:
        known = ", ".join(CATALOG)
        problems.append(Problem(f"unknown node type {json.dumps(type_name)} (known: {known})", label, "type"))
        return None, problems
    config_raw = raw.get("config", {})
    if not isinstance(config_raw, dict):
        problems.append(Problem("must be an object", label, "config"))
        return None, problems
    try:
        config = node_type(type_name).parse_config(config_raw)
    except ValidationError as exc:
        problems.extend(_problems_from(exc, label, "config"))
        config = None
    fields = {k: v for k, v in raw.items() if k in Node.model_fields and k != "config"}
    if config is None:
        return None, problems
    try:
        node = Node.model_validate({**fields, "config": config})
    except ValidationError as exc:
        problems.extend(_problems_from(exc, label, "" if label else where))
        return None, problems
    return (None if problems else node), problems
