"""Jinja2 templates of node config, rendered in a sandbox over plain context data.

An undefined variable is an error that names the whole dotted path
(`'patient.frist_name' is undefined`), never an empty string, and output and rendering
time are bounded so a template cannot stall the runtime.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, Final

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import TemplateError

MAX_OUTPUT_CHARS: Final = 100_000
MAX_RENDER_SECONDS: Final = 2.0
MAX_RANGE: Final = 10_000

# When the template being rendered on this thread must stop (monotonic seconds).
_deadline: ContextVar[float | None] = ContextVar("template_deadline", default=None)


class _TooSlow(Exception):
    pass


def _check_deadline() -> None:
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise _TooSlow


class _TimedRange:
    """`range()` in templates: bounded in size, and loops over it stop at the deadline,
    also nested loops that print nothing (which the output check alone would not see)."""

    def __init__(self, *args: int) -> None:
        self._numbers = range(*args)
        if len(self._numbers) > MAX_RANGE:
            raise OverflowError(f"range() is limited to {MAX_RANGE} numbers")

    def __len__(self) -> int:
        return len(self._numbers)

    def __iter__(self) -> Iterator[int]:
        for index, number in enumerate(self._numbers):
            if index % 256 == 0:
                _check_deadline()
            yield number


class Scope(dict[str, Any]):
    """A context mapping that knows its dotted path, so a missing key is named in full."""

    __slots__ = ("path",)

    def __init__(self, data: dict[str, Any], path: str) -> None:
        super().__init__(data)
        self.path = path


class _Environment(ImmutableSandboxedEnvironment):
    """Attribute access means key lookup in the context data, and nothing else."""

    # `'x' * 10**9` would build the whole string before the output check sees it.
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int) \
                        and len(seq) * times > MAX_OUTPUT_CHARS:
                    raise SecurityError(f"repeating a value {times} times would exceed {MAX_OUTPUT_CHARS} characters")
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
            raise SecurityError("exponents above 64 are not allowed")
        return super().call_binop(context, operator, left, right)

    def _lookup(self, obj: Any, key: Any) -> Any:
        if isinstance(obj, Undefined):
            return obj  # report the first missing name, not a follow-on one
        if isinstance(obj, dict):
            path = obj.path if isinstance(obj, Scope) else "value"
            if isinstance(key, str) and key in obj:
                value = obj[key]
                return Scope(value, f"{path}.{key}") if isinstance(value, dict) else value
            return self.undefined(name=f"{path}.{key}")
        if isinstance(obj, (list, tuple)) and isinstance(key, int):
            return super().getitem(obj, key)
        return self.undefined(hint=f"'{key}' cannot be read from a {type(obj).__name__} value")

    def getattr(self, obj: Any, attribute: str) -> Any:
        return self._lookup(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        return self._lookup(obj, argument)


_ENV: Final = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_ENV.globals["range"] = _TimedRange


@lru_cache(maxsize=2048)
def _compile(source: str) -> Any:
    return _ENV.from_string(source)


def check_syntax(source: str, field: str) -> None:
    """Raise `TemplateError` if the template does not parse."""
    try:
        _compile(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(field, f"{exc.message} (line {exc.lineno})") from None


def render(source: str, context: dict[str, Any], field: str) -> str:
    """Render one template field against a run's context."""
    check_syntax(source, field)
    scoped = {k: Scope(v, k) if isinstance(v, dict) else v for k, v in context.items()}
    started = time.monotonic()
    too_slow = TemplateError(field, f"rendering took longer than {MAX_RENDER_SECONDS:g} s")
    token = _deadline.set(started + MAX_RENDER_SECONDS)
    parts: list[str] = []
    size = 0
    try:
        for chunk in _compile(source).generate(scoped):
            parts.append(chunk)
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateError(field, f"output is longer than {MAX_OUTPUT_CHARS} characters")
            _check_deadline()
    except _TooSlow:
        raise too_slow from None
    except UndefinedError as exc:
        raise TemplateError(field, str(exc)) from None
    except SecurityError as exc:
        raise TemplateError(field, f"not allowed: {exc}") from None
    except TemplateError:
        raise
    except Exception as exc:  # a filter given the wrong kind of value, a division by zero...
        raise TemplateError(field, f"{type(exc).__name__}: {exc}") from None
    finally:
        _deadline.reset(token)
    return "".join(parts)


def variables(source: str) -> set[str]:
    """Dotted context paths a template reads, e.g. {'patient.first_name', 'run.id'}.

    Only plain `a.b.c` / `a['b']` chains are resolved; names bound inside the template
    (loop variables, `set`) are left out.
    """
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError:
        return set()
    bound = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    found: set[str] = set()

    def visit(node: nodes.Node) -> None:
        path = _dotted(node)
        if path is not None:
            if path.split(".", 1)[0] not in bound:
                found.add(path)
            return
        for child in node.iter_child_nodes():
            visit(child)

    visit(tree)
    return found


def _dotted(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return node.name
    if isinstance(node, nodes.Getattr):
        base = _dotted(node.node)
        return f"{base}.{node.attr}" if base is not None else None
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        base = _dotted(node.node)
        return f"{base}.{node.arg.value}" if base is not None else None
    return None
