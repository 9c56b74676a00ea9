"""Jinja2 templates of node config, rendered in a bounded sandbox over plain context data.

An undefined variable is an error that names the whole dotted path
(`'patient.frist_name' is undefined`), never an empty string.

Rendering is bounded (DESIGN section 3, "Templates and context") without a worker process:
every way a template can grow a value or spend time is checked *before* the work is done,
so nothing large is ever allocated and a hostile template fails in milliseconds.

- Operators `*`, `**`, `+` and `%` are intercepted (`call_binop`): a repeated, added or
  printf-padded string or list may not exceed `MAX_OUTPUT_CHARS`; integer results of `*`
  and `**` stay within `MAX_INT_BITS` bits.
- Every filter in `env.filters` is wrapped: it checks the deadline, refuses an input that
  measures more than `MAX_WORK_CHARS` and a result that does, counts the items a lazy input
  yields, and the filters that pad or multiply text (center, indent, format, replace, join,
  wordwrap, truncate, batch, slice, sum, tojson, pprint, urlize) check their size arguments
  against `MAX_OUTPUT_CHARS` first. Jinja's optimizer folds constant filter calls at compile
  time through the same `env.filters`, so compile time is bounded too.
- The parsed template is rewritten before it is compiled: every `for` loop iterates
  through `_loop` (counts iterations against `MAX_LOOP_ITERATIONS`, checks the deadline),
  every `{{ }}` through `_out` (counts all text produced, also inside macros and `set`
  blocks, against `MAX_WORK_CHARS`), every `~` through `_concat` (size-checked).
- `range` and `lipsum` are bounded; the source itself is at most `MAX_SOURCE_CHARS`;
  RecursionError, MemoryError and OverflowError become the template error.

Compiled templates (and compile failures) are cached by source.
"""

from __future__ import annotations

import functools
import inspect
import re
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Self

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, generate_lorem_ipsum, pass_environment
from jinja2.visitor import NodeTransformer

from .errors import TemplateError

MAX_OUTPUT_CHARS: Final = 100_000  # the rendered text; also any value a template builds by growing one
MAX_RENDER_SECONDS: Final = 1.0
MAX_SOURCE_CHARS: Final = 100_000
MAX_WORK_CHARS: Final = 1_000_000  # all text produced (macros, blocks); the largest value a filter reads
MAX_LOOP_ITERATIONS: Final = 100_000  # loop iterations in one rendering, all loops together
MAX_INT_BITS: Final = 64
MAX_RANGE: Final = MAX_OUTPUT_CHARS
MAX_JSON_INDENT: Final = 8


class _BoundError(Exception):
    """A template went past one of the bounds; `reason` is said to the designer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _TooSlowError(_BoundError):
    def __init__(self) -> None:
        super().__init__(f"rendering took longer than {MAX_RENDER_SECONDS:g} s")


@dataclass
class _Budget:
    """What one compile or render may still spend."""

    deadline: float
    iterations: int = 0
    produced: int = 0


_budget: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


def _check_deadline() -> None:
    budget = _budget.get()
    if budget is not None and time.monotonic() > budget.deadline:
        raise _TooSlowError


def _not_allowed(what: str) -> _BoundError:
    return _BoundError(f"not allowed: {what}")


def _size(value: Any, limit: int = MAX_WORK_CHARS) -> int:
    """About how many characters `value` prints as; stops counting once past `limit`.

    Walks containers without recursion, so a list nested 100,000 deep or a list holding
    the same big list many times is measured (and refused) without being printed.
    """
    return _measure(value, limit)[0]


def _measure(value: Any, limit: int = MAX_WORK_CHARS) -> tuple[int, int]:
    """(size as in `_size`, nesting depth)."""
    total = 0
    depth = 0
    steps = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        depth = max(depth, level)
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            if total <= limit:
                stack.extend((k, level + 1) for k in item)
                stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            if total <= limit:
                stack.extend((v, level + 1) for v in item)
        else:
            total += 8
        if total > limit:
            return total, depth
        steps += 1
        if steps % 4096 == 0:
            _check_deadline()
    return total, depth


def _readable(value: Any) -> Any:
    """An operator or filter input: measured if it is data, counted if it is lazy."""
    if isinstance(value, Undefined):
        return value
    if isinstance(value, str):
        if len(value) > MAX_WORK_CHARS:
            raise _not_allowed(f"a value longer than {MAX_WORK_CHARS} characters")
        return value
    if isinstance(value, Iterator):
        return _CountedIter(value)
    if _size(value) > MAX_WORK_CHARS:
        raise _not_allowed(f"a value longer than {MAX_WORK_CHARS} characters")
    return value


class _CountedIter(Iterator[Any]):
    """A lazy value (from map, select, batch, ...) handed to a filter: what it yields is
    measured as it comes, so `list` or `join` cannot pile up more than the bound."""

    def __init__(self, inner: Iterator[Any]) -> None:
        self._inner = inner
        self._total = 0

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Any:
        item = next(self._inner)
        self._total += _size(item)
        if self._total > MAX_WORK_CHARS:
            raise _not_allowed(f"a sequence longer than {MAX_WORK_CHARS} characters")
        _tick()
        return item


def _tick() -> None:
    budget = _budget.get()
    if budget is None:
        return
    budget.iterations += 1
    if budget.iterations > MAX_LOOP_ITERATIONS:
        raise _not_allowed(f"more than {MAX_LOOP_ITERATIONS} loop iterations")
    if budget.iterations % 64 == 0 and time.monotonic() > budget.deadline:
        raise _TooSlowError


# -- the guards the rewritten template calls -------------------------------------------

def _loop(iterable: Any) -> Iterator[Any]:
    """Every `for` loop's iterable: iterations counted, deadline checked."""
    lazy = isinstance(iterable, Iterator)
    total = 0
    for item in iterable:
        if lazy:  # a container is already in memory; what a generator yields is new
            total += _size(item)
            if total > MAX_WORK_CHARS:
                raise _not_allowed(f"a sequence longer than {MAX_WORK_CHARS} characters")
        _tick()
        yield item


def _out(value: Any) -> str:
    """Every `{{ }}` and piece of literal text: all text produced, counted."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (int, float)):  # bool too; Python itself limits an int's digits
        text = str(value)
    else:
        text = str(_readable(value))
    budget = _budget.get()
    if budget is not None:
        budget.produced += len(text)
        if budget.produced > MAX_WORK_CHARS:
            raise _not_allowed(f"producing more than {MAX_WORK_CHARS} characters of text in all")
        if time.monotonic() > budget.deadline:
            raise _TooSlowError
    return text


def _concat(*parts: Any) -> str:
    """`a ~ b`: the joined text may not exceed the output bound."""
    _check_deadline()
    texts = []
    total = 0
    for part in parts:
        text = part if isinstance(part, str) else str(_readable(part))
        total += len(text)
        if total > MAX_OUTPUT_CHARS:
            raise _not_allowed(f"joining text with '~' beyond {MAX_OUTPUT_CHARS} characters")
        texts.append(text)
    return "".join(texts)


class _Guard(NodeTransformer):
    """Rewrites a parsed template so loops, output and `~` go through the guards above.

    The guards are `ImportedName`s: the compiler imports them as Python names a template
    cannot see or rebind.
    """

    def __init__(self, tree: nodes.Template) -> None:
        # Literal text runs once per rendering unless a loop, macro or call block repeats
        # it; only repeated text needs counting (the source itself is bounded).
        self._repeated: set[int] = {
            id(output) for block in tree.find_all((nodes.For, nodes.Macro, nodes.CallBlock))
            for output in block.find_all(nodes.Output)}

    def get_visitor(self, node: nodes.Node) -> Callable[..., Any] | None:
        rewrite: dict[type[nodes.Node], Callable[..., Any]] = {
            nodes.For: self._for, nodes.Output: self._output, nodes.Concat: self._concatenation}
        return rewrite.get(type(node))

    @staticmethod
    def _call(guard: str, args: list[Any], lineno: int) -> nodes.Call:
        return nodes.Call(nodes.ImportedName(f"{__name__}.{guard}", lineno=lineno), args, [], None, None,
                          lineno=lineno)

    def _for(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._call("_loop", [node.iter], node.lineno)
        if node.recursive:  # `loop(children)` iterates again, outside the loop statement
            for call in node.find_all(nodes.Call):
                if isinstance(call.node, nodes.Name) and call.node.name == "loop" and call.args:
                    call.args = [self._call("_loop", [call.args[0]], call.lineno), *call.args[1:]]
        return node

    def _output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        repeated = id(node) in self._repeated
        node.nodes = [child if isinstance(child, nodes.TemplateData) and not repeated
                      else self._call("_out", [child], child.lineno) for child in node.nodes]
        return node

    def _concatenation(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._call("_concat", list(node.nodes), node.lineno)


_GUARDS: Final = frozenset({_loop, _out, _concat})


# -- bounded operators -------------------------------------------------------------------

def _repeat_check(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and times > 0:
            one = len(seq) if isinstance(seq, str) else _size(seq)
            if one * times > MAX_OUTPUT_CHARS:
                raise _not_allowed(f"repeating a value {times} times would exceed {MAX_OUTPUT_CHARS} characters")
    # Both factors are small when the first test fails, so the product is cheap to try.
    if _is_int(left) and _is_int(right) and (left.bit_length() + right.bit_length() > MAX_INT_BITS + 1
                                             or abs(left * right).bit_length() > MAX_INT_BITS):
        raise _not_allowed(f"numbers beyond {MAX_INT_BITS} bits")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _power_check(base: Any, exponent: Any) -> None:
    # The result has at least (bits of base - 1) * exponent bits: refuse before computing it.
    if _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1 and (
            (abs(base).bit_length() - 1) * exponent >= MAX_INT_BITS
            or abs(base ** exponent).bit_length() > MAX_INT_BITS):
        raise _not_allowed(f"numbers beyond {MAX_INT_BITS} bits")


def _add_check(left: Any, right: Any) -> None:
    if isinstance(left, str) and isinstance(right, str):
        total = len(left) + len(right)
    elif isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        total = _size(left) + _size(right)
    else:
        return
    if total > MAX_OUTPUT_CHARS:
        raise _not_allowed(f"adding values beyond {MAX_OUTPUT_CHARS} characters")


# printf conversions: %[(key)][flags][width][.precision][length]type
_PRINTF = re.compile(r"%(?:\(([^)]*)\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([diouxXeEfFgGcrsa%])")


def _printf_check(fmt: str, values: Any) -> None:
    """`fmt % values` would stay within the output bound (widths and precisions counted)."""
    widths = 0
    conversions = 0
    for match in _PRINTF.finditer(fmt):
        width, precision = match.group(2), match.group(3)
        if width == "*" or precision == "*":
            raise _not_allowed("'*' widths in a format")
        widths += int(width or 0) + int(precision or 0)
        if widths > MAX_OUTPUT_CHARS:
            raise _not_allowed(f"format widths beyond {MAX_OUTPUT_CHARS} characters")
        conversions += 1
    if isinstance(values, dict):
        items = list(values.values())
    elif isinstance(values, tuple):
        items = list(values)
    else:
        items = [values]
    largest = max((_size(item) for item in items), default=0)
    if len(fmt) + widths + conversions * largest > MAX_OUTPUT_CHARS:
        raise _not_allowed(f"formatting text beyond {MAX_OUTPUT_CHARS} characters")


# -- bounded filters -----------------------------------------------------------------------

def _size_argument(name: str, value: Any) -> None:
    if _is_int(value) and value > MAX_OUTPUT_CHARS:
        raise _not_allowed(f"'{name}' above {MAX_OUTPUT_CHARS}")


def _check_center(args: dict[str, Any]) -> None:
    _size_argument("width", args["width"])


def _check_indent(args: dict[str, Any]) -> None:
    width = args["width"]
    unit = len(width) if isinstance(width, str) else width
    _size_argument("width", unit)
    text = str(args["s"])
    if _is_int(unit) and len(text) + unit * (text.count("\n") + 2) > MAX_OUTPUT_CHARS:
        raise _not_allowed(f"indenting text beyond {MAX_OUTPUT_CHARS} characters")


def _check_format(args: dict[str, Any]) -> None:
    _printf_check(str(args["value"]), args["kwargs"] or args["args"])


def _check_replace(args: dict[str, Any]) -> None:
    text, old, new, count = str(args["s"]), str(args["old"]), str(args["new"]), args["count"]
    found = len(text) + 1 if old == "" else text.count(old)
    if _is_int(count) and count >= 0:
        found = min(found, count)
    if len(text) + found * (len(new) - len(old)) > MAX_OUTPUT_CHARS:
        raise _not_allowed(f"replacing text beyond {MAX_OUTPUT_CHARS} characters")


def _check_truncate(args: dict[str, Any]) -> None:
    _size_argument("length", args["length"])
    _size_argument("leeway", args["leeway"])


def _check_wordwrap(args: dict[str, Any]) -> None:
    text, width = str(args["s"]), args["width"]
    wrapstring = args["wrapstring"] if args["wrapstring"] is not None else "\n"
    if not _is_int(width) or width < 1:
        return  # textwrap refuses it itself
    words = text.split()
    lines = min(len(text) + 1, len(text) // width + len(words) + text.count("\n") + 1)
    if len(text) + lines * len(str(wrapstring)) > MAX_OUTPUT_CHARS:
        raise _not_allowed(f"wrapping text beyond {MAX_OUTPUT_CHARS} characters")
    longest = max((len(w) for w in words), default=0)
    if longest * longest // (2 * width) > 50_000_000:  # textwrap cuts a long word one line at a time
        raise _not_allowed(f"wrapping a {longest}-character word at width {width}")


def _check_batch(args: dict[str, Any]) -> None:
    _size_argument("linecount", args["linecount"])


def _check_slice(args: dict[str, Any]) -> None:
    _size_argument("slices", args["slices"])


def _check_tojson(args: dict[str, Any]) -> None:
    indent = args["indent"]
    if indent is not None and (not _is_int(indent) or indent > MAX_JSON_INDENT):
        raise _not_allowed(f"'indent' above {MAX_JSON_INDENT}")
    size, depth = _measure(args["value"])
    if size * (1 + (indent or 0) * depth) > MAX_WORK_CHARS:
        raise _not_allowed(f"JSON beyond {MAX_WORK_CHARS} characters")


def _check_pprint(args: dict[str, Any]) -> None:
    size, depth = _measure(args["value"])
    if size * (1 + depth) > MAX_WORK_CHARS:
        raise _not_allowed(f"printing a value beyond {MAX_WORK_CHARS} characters")


def _check_urlize(args: dict[str, Any]) -> None:
    text = str(args["value"])
    extra = len(str(args["target"] or "")) + len(str(args["rel"] or "")) + 64
    if 2 * len(text) + (len(text.split()) + 1) * extra > MAX_WORK_CHARS:
        raise _not_allowed(f"linking text beyond {MAX_WORK_CHARS} characters")


_PRECHECKS: Final[dict[str, Callable[[dict[str, Any]], None]]] = {
    "center": _check_center, "indent": _check_indent, "format": _check_format, "replace": _check_replace,
    "truncate": _check_truncate, "wordwrap": _check_wordwrap, "batch": _check_batch, "slice": _check_slice,
    "tojson": _check_tojson, "pprint": _check_pprint, "urlize": _check_urlize,
}


@pass_environment
def _join(env: Any, value: Any, d: str = "", attribute: str | int | None = None) -> str:
    """`join`, counting the joined text before it is built."""
    items = list(value)
    if attribute is not None:
        items = [env.getitem(item, attribute) for item in items]
    texts = []
    total = 0
    separator = str(d)
    for index, item in enumerate(items):
        text = item if isinstance(item, str) else str(_readable(item))
        total += len(text) + (len(separator) if index else 0)
        if total > MAX_OUTPUT_CHARS:
            raise _not_allowed(f"joining text beyond {MAX_OUTPUT_CHARS} characters")
        texts.append(text)
    return separator.join(texts)


@pass_environment
def _sum(env: Any, iterable: Any, attribute: str | int | None = None, start: Any = 0) -> Any:
    """`sum`, with each addition checked like `+`."""
    total = start
    for item in iterable:
        value = env.getitem(item, attribute) if attribute is not None else item
        _add_check(total, value)
        total = total + value
        _check_deadline()
    return total


def _guarded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that checks the deadline, its inputs, its size arguments and its result."""
    passes_first = getattr(func, "jinja_pass_arg", None) is not None
    # Jinja's async-capable filters take the evaluation context in a wrapper whose
    # signature is that of the plain function, which does not take it.
    signature_takes_first = getattr(inspect.unwrap(func), "jinja_pass_arg", None) is not None
    precheck = _PRECHECKS.get(name)
    signature = inspect.signature(func) if precheck is not None else None

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_deadline()
        head, rest = (args[:1], args[1:]) if passes_first else ((), args)
        rest = tuple(_readable(arg) for arg in rest)
        kwargs = {key: _readable(arg) for key, arg in kwargs.items()}
        if precheck is not None and signature is not None:
            try:
                bound = signature.bind(*(head if signature_takes_first else ()), *rest, **kwargs)
            except TypeError:
                pass  # the filter itself says what is wrong with its arguments
            else:
                bound.apply_defaults()
                precheck(bound.arguments)
        result = func(*head, *rest, **kwargs)
        if not isinstance(result, (Undefined, Iterator)) and _size(result) > MAX_WORK_CHARS:
            raise _not_allowed(f"'{name}' giving a value beyond {MAX_WORK_CHARS} characters")
        return result

    return guarded


class _TimedRange:
    """`range()` in templates: bounded in size; iterating it checks the deadline."""

    def __init__(self, *args: int) -> None:
        numbers = range(*args)
        try:
            size = len(numbers)
        except OverflowError:
            size = MAX_RANGE + 1
        if size > MAX_RANGE:
            raise _BoundError(f"range() is limited to {MAX_RANGE} numbers")
        self._numbers = numbers

    def __len__(self) -> int:
        return len(self._numbers)

    def __iter__(self) -> Iterator[int]:
        for index, number in enumerate(self._numbers):
            if index % 256 == 0:
                _check_deadline()
            yield number


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if not (_is_int(n) and _is_int(max)) or n > 20 or max > 200:
        raise _not_allowed("lipsum() beyond 20 paragraphs of 200 words")
    return str(generate_lorem_ipsum(n=n, html=html, min=min, max=max))


class Scope(dict[str, Any]):
    """A context mapping that knows its dotted path, so a missing key is named in full."""

    __slots__ = ("path",)

    def __init__(self, data: dict[str, Any], path: str) -> None:
        super().__init__(data)
        self.path = path


class _Environment(ImmutableSandboxedEnvironment):
    """Attribute access means key lookup in the context data, and nothing else; operators
    that can grow a value are checked first."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_deadline()
        left, right = _readable(left), _readable(right)
        if operator == "*":
            _repeat_check(left, right)
        elif operator == "**":
            _power_check(left, right)
        elif operator == "+":
            _add_check(left, right)
        elif operator == "%" and isinstance(left, str):
            _printf_check(left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        if obj in _GUARDS:  # the rewritten template's own guards: skip the sandbox's per-call checks
            return obj(*args)
        return super().call(context, obj, *args, **kwargs)

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
        if isinstance(obj, (LoopContext, Namespace)) and isinstance(key, str):
            return super().getattr(obj, key)  # `loop.index`, `ns.total`: the sandbox refuses private names
        return self.undefined(hint=f"'{key}' cannot be read from a {type(obj).__name__} value")

    def getattr(self, obj: Any, attribute: str) -> Any:
        return self._lookup(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        return self._lookup(obj, argument)


def _environment() -> _Environment:
    env = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    filters = dict(env.filters)
    filters["join"] = _join
    filters["sum"] = _sum
    env.filters = {name: _guarded(name, func) for name, func in filters.items()}
    env.globals["range"] = _TimedRange
    env.globals["lipsum"] = _lipsum
    return env


_ENV: Final = _environment()


def _reason_of(exc: BaseException) -> str:
    """A failure in a designer's words (never an exception class name)."""
    if isinstance(exc, _BoundError):
        return exc.reason
    if isinstance(exc, UndefinedError):
        return str(exc)
    if isinstance(exc, SecurityError):
        return f"not allowed: {exc}"
    if isinstance(exc, RecursionError):
        return "the template is nested too deeply"
    if isinstance(exc, MemoryError):
        return "the template needs too much memory"
    if isinstance(exc, OverflowError):
        return "a number is too large"
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    text = str(exc).strip()
    return text.splitlines()[0] if text else "the template cannot be rendered"


@lru_cache(maxsize=2048)
def _compile(source: str) -> Template | str:
    """The compiled template, or why it cannot be compiled (both cached)."""
    if len(source) > MAX_SOURCE_CHARS:
        return f"the template is longer than {MAX_SOURCE_CHARS} characters"
    token = _budget.set(_Budget(deadline=time.monotonic() + MAX_RENDER_SECONDS))
    try:
        parsed = _ENV.parse(source)
        tree = _Guard(parsed).visit(parsed)
        code = _ENV.compile(tree)
        return _ENV.template_class.from_code(_ENV, code, _ENV.make_globals(None), None)
    except TemplateSyntaxError as exc:
        return f"{exc.message} (line {exc.lineno})"
    except SyntaxError:  # Python's own nesting limit on the generated code
        return "the template is nested too deeply"
    except (RecursionError, MemoryError, OverflowError, _BoundError) as exc:
        return _reason_of(exc)
    finally:
        _budget.reset(token)


def check_syntax(source: str, field: str) -> None:
    """Raise `TemplateError` if the template cannot be compiled (same bounds as rendering)."""
    compiled = _compile(source)
    if isinstance(compiled, str):
        raise TemplateError(field, compiled)


def render(source: str, context: dict[str, Any], field: str) -> str:
    """Render one template field against a run's context, within the bounds above."""
    compiled = _compile(source)
    if isinstance(compiled, str):
        raise TemplateError(field, compiled)
    scoped = {k: Scope(v, k) if isinstance(v, dict) else v for k, v in context.items()}
    token = _budget.set(_Budget(deadline=time.monotonic() + MAX_RENDER_SECONDS))
    parts: list[str] = []
    size = 0
    try:
        # The render function directly, not `generate()`: that one rewrites the traceback
        # of every failure into template frames, which costs far more than the failure.
        for chunk in compiled.root_render_func(compiled.new_context(scoped)):
            parts.append(chunk)
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise _BoundError(f"output is longer than {MAX_OUTPUT_CHARS} characters")
        _check_deadline()
    except TemplateError:
        raise
    except Exception as exc:  # a bound, an undefined name, a filter given the wrong kind of value...
        raise TemplateError(field, _reason_of(exc)) from exc
    finally:
        _budget.reset(token)
    return "".join(parts)


def variables(source: str) -> set[str]:
    """Dotted context paths a template reads, e.g. {'patient.first_name', 'run.id'}.

    Only plain `a.b.c` / `a['b']` chains are resolved; names bound inside the template
    (loop variables, `set`) are left out. A template that does not compile reads nothing.
    """
    if isinstance(_compile(source), str):
        return set()
    tree = _ENV.parse(source)
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
