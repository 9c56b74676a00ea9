"""Templates: sandboxed Jinja2 over plain data; undefined names are errors naming the path; output and time bounded."""

from __future__ import annotations

from typing import Any

import pytest

from app.workflow import TemplateError
from app.workflow.templates import MAX_OUTPUT_CHARS, render, variables

CONTEXT: dict[str, Any] = {
    "patient": {"id": 12, "first_name": "Ann", "last_name": "Smith", "email": None, "mobile": "+44 7700 900000"},
    "appointment": {"id": 3, "starts_at": "2026-12-01T09:30:00+00:00", "practitioner": "Dr Okafor"},
    "run": {"id": 7},
    "steps": {"mail": {"output": {"message_id": "<run.7.mail.1@clinic>"}}},
    "now": "2026-11-30T09:00:00+00:00",
}


def failure(source: str, field: str = "body") -> str:
    with pytest.raises(TemplateError) as caught:
        render(source, CONTEXT, field)
    return str(caught.value)


def test_renders_context_fields() -> None:
    text = "Hi {{ patient.first_name }}, see {{ appointment['practitioner'] }} ({{ steps.mail.output.message_id }})"
    assert render(text, CONTEXT, "body") == "Hi Ann, see Dr Okafor (<run.7.mail.1@clinic>)"


def test_empty_value_can_fall_back() -> None:
    assert render("{{ patient.email or 'no email' }}", CONTEXT, "body") == "no email"


def test_undefined_variable_names_the_whole_dotted_path() -> None:
    assert failure("Hi {{ patient.frist_name }}") == "Template error in 'body': 'patient.frist_name' is undefined"


def test_undefined_nested_path_names_the_first_missing_part() -> None:
    assert failure("{{ steps.mail.output.status_code }}") == \
        "Template error in 'body': 'steps.mail.output.status_code' is undefined"
    assert failure("{{ recall.due_date }}") == "Template error in 'body': 'recall' is undefined"


def test_undefined_is_never_an_empty_string_even_in_filters() -> None:
    assert "'patient.nickname' is undefined" in failure("{{ patient.nickname | upper }}")


def test_error_names_the_field_being_rendered() -> None:
    assert failure("{{ patient.frist_name }}", field="subject").startswith("Template error in 'subject':")


@pytest.mark.parametrize("source", [
    "{{ patient.__class__ }}",
    "{{ patient.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ patient.first_name.__class__ }}",
    "{{ patient | attr('__class__') }}",
    "{{ lipsum.__globals__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ range.__self__ }}",
    "{{ patient.items() }}",
    "{{ patient.first_name.format(patient) }}",
])
def test_sandbox_blocks_escapes_from_the_context(source: str) -> None:
    message = failure(source)
    assert message.startswith("Template error in 'body': ")
    assert "class" not in render("{{ patient.first_name }}", CONTEXT, "body")


def test_sandbox_explains_what_cannot_be_read() -> None:
    assert failure("{{ ''.__class__.__mro__ }}") == \
        "Template error in 'body': '__class__' cannot be read from a str value"
    assert failure("{{ patient.__class__ }}") == "Template error in 'body': 'patient.__class__' is undefined"


def test_imports_are_not_available() -> None:
    assert "Template error in 'body'" in failure("{% import 'os' as os %}{{ os }}")


def test_output_is_bounded() -> None:
    assert failure("{% for i in range(9000) %}{{ patient.first_name * 10 }}{% endfor %}") == \
        f"Template error in 'body': output is longer than {MAX_OUTPUT_CHARS} characters"


def test_huge_repetition_is_refused_before_it_is_built() -> None:
    assert "not allowed: repeating a value" in failure("{{ 'x' * 10000000000 }}")
    assert "not allowed: numbers beyond 64 bits" in failure("{{ 10 ** 100000000 }}")


def test_range_is_bounded() -> None:
    assert "range() is limited to" in failure("{% for i in range(100000000) %}{% endfor %}")


def test_ordinary_arithmetic_and_loops_still_work() -> None:
    assert render("{{ 2 ** 10 }} {{ 'ab' * 2 }} {% for i in range(3) %}{{ i }}{% endfor %} {{ range(4)|length }}",
                  CONTEXT, "body") == "1024 abab 012 4"


def test_syntax_error_is_reported_with_its_line() -> None:
    assert failure("line one\n{{ patient.first_name ") .startswith(
        "Template error in 'body': unexpected end of template")
    assert "(line 2)" in failure("line one\n{{ patient.first_name ")


def test_variables_lists_dotted_paths_read_by_a_template() -> None:
    source = ("{{ patient.first_name }} {{ appointment['starts_at'] }} {% set x = run.id %}{{ x }}"
              "{% for r in steps.mail.output %}{{ r.name }}{% endfor %}")
    assert variables(source) == {"patient.first_name", "appointment.starts_at", "run.id", "steps.mail.output"}


def test_a_template_that_loops_without_output_is_stopped() -> None:
    """Nested loops printing nothing would never reach the output check; the iteration count stops them."""
    assert failure("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}") == \
        "Template error in 'body': not allowed: more than 100000 loop iterations"
