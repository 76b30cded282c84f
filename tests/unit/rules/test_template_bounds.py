"""Templates: refused at apply when they cannot work, bounded when they render.

Rendering is the boundary between a rule author's text, a publisher's values and the
pipeline: whatever either sends, :func:`render` returns text or raises
:class:`TemplateError`, within the sandbox's budget.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock.rules import Rule, RuleDefinitionError, on, webhook
from interlock.rules.template_sandbox import MAX_OPERATIONS, MAX_OUTPUT, MAX_STRING
from interlock.rules.templates import (
    RenderScope,
    TemplateError,
    check_template,
    render,
    render_value,
)


def context(payload: Any = None) -> dict[str, Any]:
    event = {
        "event": "job.done",
        "resource": {"id": "dw.sales"},
        "payload": payload if payload is not None else {"a": 6, "b": 0, "rows": "12"},
        "occurred": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return {
        "rule": {"name": "r", "description": "", "tags": [], "owner": None},
        "firing": {"id": "f", "status": "fired", "late": False, "summary": "s"},
        "key": "k",
        "window": {"start": datetime(2026, 1, 1, tzinfo=UTC), "deadline": datetime(2026, 1, 2)},
        "event": event,
        "events": [event],
        "expected": None,
        "arrived": None,
    }


# -- refused at apply --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{ evnt }}", "unknown name 'evnt'"),
        ("{{ event.__class__.__mro__ }}", "is private: templates cannot reach it"),
        ("{{ event['_hidden'] }}", "'_hidden' is private"),
        ("{{ event|attr('__class__') }}", "'__class__' is private"),
        ("{{ 1/0 }}", "always fails: ZeroDivisionError"),
        ("{{ 9**(9**7) }}", "too costly to evaluate"),
        ("{{ 'a' * 10**9 }}", "too costly to evaluate"),
        ("{{ '%999999999s' % 'a' }}", "too costly to evaluate"),
        ("{% macro f() %}{% endmacro %}", "the tag 'macro'"),
        ("{% include 'x' %}", "the tag 'include'"),
        ("{{ lipsum(10) }}", "unknown name 'lipsum'"),
        ("{{ key|nofilter }}", "no filter named 'nofilter'"),
        ("{{ key|random }}", "no filter named 'random'"),
        ("{{ key is nothing }}", "no test named 'nothing'"),
        ("{{ key }", "syntax error"),
    ],
)
def test_templates_that_cannot_work_are_refused_at_apply(template: str, problem: str) -> None:
    found = check_template(template)
    assert found is not None
    assert problem in found, found
    with pytest.raises(RuleDefinitionError, match=r"then\[0\]\.body\.x"):
        Rule(name="r", when=on("job.done"), then=[webhook("http://h/", body={"x": template})])


@pytest.mark.parametrize(
    "template",
    [
        "{{ key }}",
        "{{ event.payload.rows|int + 1 }}",
        "{% for e in events %}{{ e.resource.id }}{% endfor %}",
        "{% set n = 3 %}{{ n * 2 }}",
        "{{ window.deadline.date() }}",
        "{{ '{:>5}'.format(key) }}",
        "{{ (event.payload|tojson)[:10] }}",
        "{{ 2**10 }}",
    ],
)
def test_ordinary_templates_pass_the_checks(template: str) -> None:
    assert check_template(template) is None


# -- bounded at render -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ event.payload.a / event.payload.b }}", "ZeroDivisionError"),
        ("{{ event.payload.rows + 1 }}", "TypeError"),
        ("{{ event.payload.a ** 100000 }}", "a power would be"),
        ("{{ 'x' * event.payload.a * 1000000 }}", "repeating a sequence"),
        ("{{ key.ljust(10**9) }}", r"calling str\.ljust\(\) is not allowed"),
        ("{{ '{:>999999999}'.format(key) }}", "a format width"),
        ("{{ key|replace('k', 'k' * 1000000)|replace('k', 'kk') }}", "a replacement"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            f"more than {MAX_OPERATIONS:,} operations",
        ),
        ("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "output is longer than"),
        ("{{ ('x' * 1000000) ~ ('y' * 1000000) }}", "a concatenation would be"),
        ("{{ event.payload.missing.deeper }}", "has no attribute 'missing'"),
    ],
)
def test_costly_or_failing_renders_are_template_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render(template, context())


def test_the_fields_of_one_action_share_one_budget() -> None:
    loop = "{% for i in range(60000) %}{% endfor %}"
    assert render(loop, context()) == ""
    with RenderScope(), pytest.raises(TemplateError, match="operations"):
        render_value({"a": loop, "b": loop, "c": loop, "d": loop}, context())


def test_limits_are_what_the_documentation_says() -> None:
    assert MAX_OUTPUT == MAX_STRING == 1_048_576
    assert MAX_OPERATIONS == 200_000


# -- the grammar, fuzzed -----------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=15,
)
keys = st.sampled_from(["a", "b", "s", "n", "l", "d"])
atoms = st.one_of(
    keys.map(lambda key: f"event.payload.{key}"),
    keys.map(lambda key: f"event.payload['{key}']"),
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["1.5", "'txt'", "none", "true", "key", "firing.id", "[1, 2, 3]", "{}"]),
    st.sampled_from(["range(100)", "event.occurred", "window.start", "events|length"]),
)
binary = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "~", "==", "<", "and", "in"])
filters = st.sampled_from(
    [
        "|string", "|int", "|float", "|abs", "|length", "|list", "|first", "|last", "|sort",
        "|unique", "|join(',')", "|replace('a', 'bb')", "|upper", "|tojson", "|sum",
        "|default(0)", "|round", "|reverse", "|truncate(5)", "|map('string')|join",
        "|format(1)", "|dictsort", "|items|list", "|trim", "|wordcount",
    ]
)  # fmt: skip
methods = st.sampled_from(
    [".upper()", ".split(',')", ".replace('a', 'aaaa')", ".strip()", ".get('a')",
     ".keys()|list", ".isoformat()", ".date()", ".count('a')", ".startswith('a')"]
)  # fmt: skip


def expressions() -> st.SearchStrategy[str]:
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.tuples(inner, binary, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(inner, filters).map("".join),
            st.tuples(inner, methods).map(lambda t: f"({t[0]}){t[1]}"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]})[{t[1]}]"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
            inner.map(lambda e: f"-({e})"),
        ),
        max_leaves=8,
    )


templates = st.one_of(
    expressions().map(lambda e: "{{ " + e + " }}"),
    st.tuples(expressions(), expressions()).map(
        lambda t: "{% for x in " + t[0] + " %}{{ x }}{{ " + t[1] + " }}{% endfor %}"
    ),
    st.tuples(expressions(), expressions()).map(
        lambda t: "{% set v = " + t[0] + " %}{% if v %}{{ v ~ " + t[1] + " }}{% endif %}"
    ),
)
payloads = st.fixed_dictionaries(
    {}, optional=dict.fromkeys(["a", "b", "s", "n", "l", "d"], json_values)
)


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(template=templates, payload=payloads)
def test_rendering_never_raises_out_of_the_renderer(template: str, payload: dict[str, Any]) -> None:
    values = context(payload)
    for native in (False, True):
        try:
            rendered = render_value({"x": template}, values, native=native)
        except TemplateError:
            continue
        if not native:
            assert isinstance(rendered["x"], str)
            assert len(rendered["x"]) <= MAX_OUTPUT
