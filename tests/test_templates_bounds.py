"""Template bounds: hostile templates fail with the template error, quickly and without a huge allocation,
at render time and when a workflow holding one is validated for publishing; normal templates keep working."""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from app.workflow import TemplateError, load_workflow, publish_problems
from app.workflow.templates import check_syntax, render

CONTEXT: dict[str, Any] = {"patient": {"id": 12, "first_name": "Ann", "last_name": "Smith", "notes": "x" * 150_000},
                           "run": {"id": 7}}

HANG_SECONDS = 10  # only detects a hang; not a performance assertion
PEAK_BYTES = 64 * 1024 * 1024  # a payload that built its huge value would allocate gigabytes

REPLACE_CHAIN = "{{ 'aaaaaaaaaa'" + "|replace('a', 'aaaaaaaaaa')" * 10 + " }}"
SET_CHAIN = "{% set x = 'ab' %}" + "{% set x = x ~ x %}" * 40 + "{{ x|length }}"
NESTED_LISTS = "{% set a0 = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1] %}" + "".join(
    f"{{% set a{i} = [a{i - 1}, a{i - 1}, a{i - 1}, a{i - 1}, a{i - 1}, a{i - 1}, a{i - 1}, a{i - 1}, a{i - 1}, "
    f"a{i - 1}] %}}" for i in range(1, 10)) + "{{ a9 }}"

PAYLOADS = {
    "nested loops": "{% for x in 'a'*100000 %}{% for y in 'a'*100000 %}{% endfor %}{% endfor %}",
    "center": "{{ 'a'|center(1000000000) }}",
    "format width": "{{ '%0999999999d'|format(1) }}",
    "percent width": "{{ '%-999999999s' % 'a' }}",
    "format many conversions": "{{ ('%(a)s' * 1000) % {'a': 'b' * 1000} }}",
    "indent": "{{ 'x'|indent(10**9, true) }}",
    "indent string": "{{ ('x\n' * 10000)|indent('y' * 1000, true, true) }}",
    "replace chain": REPLACE_CHAIN,
    "repeat string": "{{ 'a'*10**9 }}",
    "tower of powers": "{{ 9**9**9 }}",
    "squaring": "{% set x = 3 %}" + "{% set x = x * x %}" * 40 + "{{ x }}",
    "range list": "{{ range(10**9)|list }}",
    "wordwrap output": "{{ ('a'*100000)|wordwrap(1) }}",
    "wordwrap long word": "{{ ('a'*45000)|wordwrap(1) }}",
    "wordwrap separator": "{{ ('a '*100)|wordwrap(1, true, 'x'*10000) }}",
    "truncate": "{{ 'a'|truncate(10**9) }}",
    "repeat list": "{{ [1]*10**9 }}",
    "join separator": "{{ 'ab'|join('x'*100000) }}",
    "join squares": "{{ ('a'*1000)|join('b'*1000) }}",
    "namespace doubling": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
                          "{% endfor %}{{ ns.s|length }}",
    "namespace adding": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
                        "{% endfor %}{{ ns.s|length }}",
    "set chain": SET_CHAIN,
    "shared nested lists": NESTED_LISTS,
    "shared nested lists to json": NESTED_LISTS.replace("{{ a9 }}", "{{ a9|tojson }}"),
    "lazy map into list": "{{ range(100000)|map('center', 1000)|list|length }}",
    "macro output": "{% macro m() %}{% for i in range(10000) %}{{ 'x'*10000 }}{% endfor %}{% endmacro %}"
                    "{{ m()|length }}",
    "macro literal text": "{% macro m() %}{% for i in range(10000) %}" + "y" * 2000 + "{% endfor %}{% endmacro %}"
                          "{{ m()|length }}",
    "macro recursion": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "recursive loop": "{% for x in [[1, 2], [3]] recursive %}{% if x is iterable %}{{ loop([x, x]) }}{% endif %}"
                      "{% endfor %}",
    "batch fill": "{{ [1]|batch(10**9, 'x')|list }}",
    "slice": "{{ [1]|slice(10**9)|list|length }}",
    "tojson indent": "{{ [[[[1]]]]|tojson(indent=10**9) }}",
    "sum of lists": "{% set x = [1]*10000 %}{{ [x, x, x, x, x, x, x, x]|sum(start=[])|length }}",
    "lipsum": "{{ lipsum(10**6) }}",
    "big context value doubled": "{{ patient.notes * 2 }}",
    "deep parentheses": "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
    "deep blocks": "{% if 1 %}" * 3000 + "x" + "{% endif %}" * 3000,
    "huge template": "x" * 10_000_000,
}


def bounded(call: Callable[[], Any]) -> tuple[BaseException | None, int]:
    """Run `call` in a thread; fail if it hangs. Returns (what it raised, peak bytes allocated)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            call()
        except BaseException as exc:
            outcome["error"] = exc

    tracemalloc.start()
    try:
        worker = threading.Thread(target=target, daemon=True)
        worker.start()
        worker.join(HANG_SECONDS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not worker.is_alive(), f"still running after {HANG_SECONDS} s"
    return outcome.get("error"), peak


@pytest.mark.parametrize("source", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_hostile_template_fails_its_field_quickly_and_small(source: str) -> None:
    error, peak = bounded(lambda: render(source, CONTEXT, "body"))
    assert isinstance(error, TemplateError), repr(error)
    message = str(error)
    assert message.startswith("Template error in 'body': ")
    assert "\n" not in message and "Error" not in message.removeprefix("Template error")
    assert peak < PEAK_BYTES


@pytest.mark.parametrize("source", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_checking_a_hostile_template_at_publish_never_hangs(source: str) -> None:
    """The publish check compiles with the same bounded environment (constant folding included)."""
    error, peak = bounded(lambda: check_syntax(source, "body"))
    assert error is None or isinstance(error, TemplateError), repr(error)
    assert peak < PEAK_BYTES


def test_a_workflow_with_a_hostile_template_is_validated_without_hanging() -> None:
    workflow = load_workflow({
        "format": "clinicflow.workflow/1", "name": "Hostile",
        "nodes": [
            {"id": "start", "type": "trigger.manual", "config": {"record_type": "patient"}},
            {"id": "note", "type": "action.add_note", "config": {"text": PAYLOADS["deep parentheses"]}},
            {"id": "note2", "type": "action.add_note", "config": {"text": PAYLOADS["center"]}},
        ],
        "edges": [{"from": "start", "to": "note"}, {"from": "note", "to": "note2"}],
    })
    found: list[Any] = []
    error, _ = bounded(lambda: found.extend(publish_problems(workflow)))
    assert error is None
    assert [(p.node_id, p.field, p.message) for p in found] == [
        ("note", "text", "template error: the template is nested too deeply")]


def test_the_error_names_the_field() -> None:
    with pytest.raises(TemplateError) as caught:
        render("{{ 'a'|center(1000000000) }}", CONTEXT, "subject")
    assert str(caught.value) == "Template error in 'subject': not allowed: 'width' above 100000"


@pytest.mark.parametrize(("source", "expected"), [
    ("{{ patient.first_name|center(9) }}", "   Ann   "),
    ("{{ '%05d|%-4s|%.2f'|format(42, 'ab', 3.14159) }}", "00042|ab  |3.14"),
    ("{{ '%s and %s' % ('a', 'b') }}", "a and b"),
    ("{{ 'a\nb'|indent(2, true) }}", "  a\n  b"),
    ("{{ 'hello world'|replace('o', '0') }}", "hell0 w0rld"),
    ("{{ 'one two three'|wordwrap(7) }}", "one two\nthree"),
    ("{{ 'one two three four'|truncate(12) }}", "one two..."),
    ("{{ 'one two three four five six'|truncate(12, true, '...', 0) }}", "one two t..."),
    ("{{ [patient.first_name, patient.last_name]|join(' ') }}", "Ann Smith"),
    ("{{ [1, 2, 3]|sum }} {{ [[1], [2]]|sum(start=[]) }}", "6 [1, 2]"),
    ("{{ range(5)|map('string')|join(',') }}", "0,1,2,3,4"),
    ("{{ [1, 2, 3, 4, 5]|batch(2)|list }}", "[[1, 2], [3, 4], [5]]"),
    ("{{ {'a': [1, 2]}|tojson }}", '{"a": [1, 2]}'),
    ("{{ patient.first_name ~ ' ' ~ patient.last_name }}", "Ann Smith"),
    ("{{ 2 ** 62 }} {{ 3 * 4 }} {{ 'ab' + 'cd' }} {{ [1] + [2] }}", "4611686018427387904 12 abcd [1, 2]"),
    ("{% for x in [3, 1, 2]|sort %}{{ loop.index }}:{{ x }} {% endfor %}", "1:1 2:2 3:3 "),
    ("{% macro hi(name) %}Hi {{ name }}{% endmacro %}{{ hi(patient.first_name) }}!", "Hi Ann!"),
    ("{% for x in [1, [2, [3]]] recursive %}{% if x is iterable %}{{ loop(x) }}{% else %}{{ x }}{% endif %}"
     "{% endfor %}", "123"),
    ("{% set ns = namespace(total=0) %}{% for i in range(4) %}{% set ns.total = ns.total + i %}{% endfor %}"
     "{{ ns.total }}", "6"),
    ("{{ patient.notes|truncate(10, true, '') }}", "x" * 10),
    ("{{ patient.notes|length }}", "150000"),
    ("{% filter upper %}{{ patient.first_name }}{% endfilter %}", "ANN"),
])
def test_ordinary_templates_render_as_before(source: str, expected: str) -> None:
    assert render(source, CONTEXT, "body") == expected


def test_output_up_to_the_bound_is_allowed() -> None:
    assert len(render("{{ 'a' * 100000 }}", CONTEXT, "body")) == 100_000
