"""The workflow file format, version 1 (`clinicflow.workflow/1`), as pydantic models.

`load_workflow` is the one way in from outside (files, the database, the editor): it
checks everything a file can get wrong and reports each problem with its node and field.
`Workflow.to_dict` is the one way out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import cached_property
from types import MappingProxyType
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError

from .catalog import CATALOG, NodeConfig, NodeType, node_type, type_title
from .errors import Problem, WorkflowFileError

FORMAT: Final = "clinicflow.workflow/1"
ID_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
# DESIGN section 6: the practice's defaults until changed in Settings; a workflow may set its own.
DEFAULT_LIMITS: Final[Mapping[str, int]] = MappingProxyType(
    {"max_runtime_seconds": 30 * 86400, "max_actions_per_run": 25, "max_nodes": 100})
MAX_FILE_BYTES: Final = 5 * 1024 * 1024
MAX_DEPTH: Final = 64  # nesting of objects and arrays; a real workflow file needs about 8


class Limits(BaseModel):
    """Safety limits of one workflow; a missing one takes the practice's default."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    max_runtime_seconds: int | None = Field(default=None, ge=1, le=366 * 86400)
    max_actions_per_run: int | None = Field(default=None, ge=1, le=10_000)
    max_nodes: int | None = Field(default=None, ge=1, le=10_000)
    max_messages_per_day: int | None = Field(default=None, ge=1, le=1_000_000)


class ReenrolAfter(BaseModel):
    """`reenrol: {"after_days": N}`: a record may start another run N days after its last."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    after_days: int = Field(ge=1, le=36500)


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    id: str = Field(pattern=ID_PATTERN)
    type: str
    config: SerializeAsAny[NodeConfig]
    position: tuple[float, float] | None = None
    title: str | None = None

    @property
    def spec(self) -> NodeType:
        """This node's catalog entry."""
        return node_type(self.type)

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def is_action(self) -> bool:
        """Counts toward max actions per run (`NodeType.is_action`)."""
        return self.spec.is_action

    @property
    def is_message(self) -> bool:
        """Sends an email or SMS (`NodeType.is_message`)."""
        return self.spec.is_message


class Edge(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)
    source: str = Field(alias="from")
    target: str = Field(alias="to")
    port: str = "out"


class Workflow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    format: str = FORMAT
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    limits: Limits | None = None
    # DESIGN section 3: whether a record that already had a run may start another; None is
    # the default (never for a schedule with for_each, else always; see `reenrol_policy`).
    reenrol: Literal["always", "never"] | ReenrolAfter | None = None
    nodes: tuple[Node, ...] = ()
    edges: tuple[Edge, ...] = ()

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def step_title(self, node_id: str, node_type_name: str | None = None) -> str:
        """How a person knows the node: its title, else its node type's name from the
        catalog ("Send email"), else "a step" — never its id. `node_type_name` is the type
        to name when the node is not (or no longer) in this workflow."""
        node = next((n for n in self.nodes if n.id == node_id), None)
        if node is not None and node.title:
            return node.title
        return type_title(node.type if node is not None else node_type_name)

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

    def reenrol_policy(self) -> str | int:
        """"always", "never", or a number of days (DESIGN section 3), defaults applied."""
        if isinstance(self.reenrol, ReenrolAfter):
            return self.reenrol.after_days
        if self.reenrol is not None:
            return self.reenrol
        config = self.trigger.config if self.trigger is not None else None
        if self.trigger is not None and self.trigger.type == "trigger.schedule" and getattr(config, "for_each", None):
            return "never"
        return "always"

    def effective_limits(self, defaults: Mapping[str, int] | None = None) -> dict[str, int]:
        """This workflow's safety limits: its own where it sets one, else `defaults` (the
        practice's, from settings), else DESIGN section 6. The one place limits are merged."""
        limits = {key: int(value) for key, value in {**DEFAULT_LIMITS, **(defaults or {})}.items()}
        if self.limits is not None:
            for key, value in self.limits.model_dump().items():
                if value is not None:
                    limits[key] = int(value)
        return limits

    def outgoing(self, node_id: str) -> list[Edge]:
        """Edges leaving a node, in the order the runtime follows them."""
        return [e for e in self.edges if e.source == node_id]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": self.format, "name": self.name}
        if self.description:
            data["description"] = self.description
        if self.limits is not None:
            data["limits"] = self.limits.model_dump(exclude_none=True)
        if self.reenrol is not None:
            data["reenrol"] = self.reenrol if isinstance(self.reenrol, str) else self.reenrol.model_dump()
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


def _shown(value: Any, limit: int = 60) -> str:
    """A given value in a message: JSON, on one line, shortened."""
    if isinstance(value, (dict, list, tuple)) and len(value) > 8:
        return f"a {'list' if isinstance(value, (list, tuple)) else 'object'} of {len(value)} items"
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        text = "NaN" if isinstance(value, float) and math.isnan(value) else (
            str(value) if isinstance(value, float) else f"a {type(value).__name__} value")
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    if kind == "finite_number":
        return f"must be a finite number, not {_shown(given)}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, not {_shown(given)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be an object, not {_shown(given)}"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list, not {_shown(given)}"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} items"
    if kind == "string_pattern_mismatch" and err["loc"][-1:] == ("id",):
        return (f"{_shown(given)} is not a node id: start with a letter or '_' and use only "
                "letters, digits and '_' (at most 64)")
    return str(err["msg"]).removeprefix("Value error, ")


def load_workflow(source: str | bytes | dict[str, Any]) -> Workflow:
    """Parse a workflow file (JSON text or already-decoded data); refuse anything malformed.

    Raises `WorkflowFileError` listing every problem found, each naming its node and field.
    Text over `MAX_FILE_BYTES` is refused before it is parsed; nesting deeper than
    `MAX_DEPTH`, NaN and Infinity are refused too.
    """
    if isinstance(source, (str, bytes)):
        size = len(source) if isinstance(source, bytes) or len(source) > MAX_FILE_BYTES else len(source.encode())
        if size > MAX_FILE_BYTES:
            raise WorkflowFileError([Problem(
                f"the file is {size / 1024 / 1024:.1f} MB; a workflow file may be at most "
                f"{MAX_FILE_BYTES // 1024 // 1024} MB")])
        try:
            data = json.loads(source, parse_constant=float)  # NaN, Infinity: refused below, with where
        except json.JSONDecodeError as exc:
            raise WorkflowFileError(
                [Problem(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]
            ) from None
        except UnicodeDecodeError as exc:
            raise WorkflowFileError([Problem(f"not UTF-8 text (byte {exc.start}); save it as UTF-8")]) from None
        except RecursionError:
            raise WorkflowFileError([Problem(f"nested more than {MAX_DEPTH} levels deep")]) from None
    else:
        data = source
    if not isinstance(data, dict):
        raise WorkflowFileError([Problem("a workflow file must be a JSON object")])
    shape = _shape_problem(data)
    if shape is not None:
        raise WorkflowFileError([shape])

    problems: list[Problem] = []
    allowed = set(Workflow.model_fields)
    for key in data:
        if key not in allowed:
            problems.append(Problem("unknown key", None, _key(key)))
    if data.get("format") != FORMAT:
        problems.append(Problem(f"must be '{FORMAT}', not {_shown(data.get('format'))}", None, "format"))

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
        from_node, to_node = by_id.get(edge.source), by_id.get(edge.target)
        if edge.source not in seen:
            problems.append(Problem(f"edge {index} starts at missing node '{edge.source}'", None,
                                    f"edges.{index}.from"))
        elif from_node is not None and edge.port not in from_node.spec.ports_out:
            ports = ", ".join(from_node.spec.ports_out)
            problems.append(Problem(f"has no port '{edge.port}' (ports: {ports})", edge.source, f"edges.{index}.port"))
        if edge.target not in seen:
            problems.append(Problem(f"edge {index} goes to missing node '{edge.target}'", None, f"edges.{index}.to"))
        elif to_node is not None and not to_node.spec.has_input:
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
    raw_id = raw.get("id")
    # A node is named by its id only when the id is one; else by its place in the file.
    label = _label(raw_id)
    problems: list[Problem] = []
    for key in raw:
        if key not in Node.model_fields:
            problems.append(Problem("unknown key", label, _key(key) if label else f"{where}.{_key(key)}"))
    type_name = raw.get("type")
    if not isinstance(type_name, str) or type_name not in CATALOG:
        known = ", ".join(CATALOG)
        problems.append(Problem(f"unknown node type {_shown(type_name)} (known: {known})", label,
                                "type" if label else f"{where}.type"))
        return None, problems
    config_raw = raw.get("config", {})
    if not isinstance(config_raw, dict):
        problems.append(Problem(f"must be an object, not {_shown(config_raw)}", label,
                                "config" if label else f"{where}.config"))
        return None, problems
    try:
        config = node_type(type_name).parse_config(config_raw)
    except ValidationError as exc:
        problems.extend(_problems_from(exc, label, "config" if label else f"{where}.config"))
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


def _label(raw_id: Any) -> str | None:
    """How a node is named in messages: its id when that reads as one; else None (then
    problems name its place in the file, `nodes.3`)."""
    if isinstance(raw_id, str) and 0 < len(raw_id) <= 64 and raw_id.isprintable():
        return raw_id
    return None


def _key(key: Any) -> str:
    """A key as a field name in a message: one line, not too long."""
    text = str(key)
    if len(text) > 40 or not text.isprintable():
        return _shown(text, 40)
    return text


def _shape_problem(data: dict[str, Any]) -> Problem | None:
    """The first place the decoded file is nested too deeply or holds NaN/Infinity.

    Walked without recursion, so a 100,000-deep array given as data is refused cleanly too.
    """
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            return _problem_at(data, path[: MAX_DEPTH + 1], f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, float) and not math.isfinite(value):
            name = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
            return _problem_at(data, path, f"must be a finite number, not {name}")
        if isinstance(value, dict):
            stack.extend((v, (*path, _key(k))) for k, v in reversed(value.items()))
        elif isinstance(value, (list, tuple)):
            stack.extend((v, (*path, str(i))) for i, v in reversed(list(enumerate(value))))
    return None


def _problem_at(data: dict[str, Any], path: tuple[str, ...], message: str) -> Problem:
    """A problem at `path`, naming the node (by id) when the path is inside one."""
    if len(path) >= 2 and path[0] == "nodes" and isinstance(data.get("nodes"), list):
        raw = data["nodes"][int(path[1])]
        label = _label(raw.get("id") if isinstance(raw, dict) else None)
        if label is not None:
            return Problem(message, label, ".".join(path[2:]) or None)
    return Problem(message, None, ".".join(path) or None)
