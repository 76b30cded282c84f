"""Jinja templates in actions, rendered in a sandbox over a firing.

Rule authors may not run code, and publishers choose the values templates render over,
so templates render in a sandbox with a bounded cost
(:mod:`interlock.rules.template_sandbox`: Jinja's immutable sandbox, an allow-list of
filters and methods, an operation budget and size limits) with
:class:`~jinja2.StrictUndefined` (a misspelt name is an error, not an empty string).
Templates are checked when their rule is validated
(:mod:`interlock.rules.template_checks`); rendering never raises anything but
:class:`TemplateError`. The context a firing provides:

==================  =============================================================
``rule``            ``name``, ``description``, ``tags``, ``owner``
``firing``          ``id``, ``status`` (``fired``/``resolved``), ``late``,
                    ``summary``, ``fired_at``
``key``             the ``for_each`` key (a string; empty without ``for_each``)
``window``          ``start``, ``deadline`` (aware datetimes in the rule's calendar
                    zone; UTC for windows of no calendar), ``date`` (the business
                    date: the local day the window closes), ``tz``, ``start_utc``,
                    ``deadline_utc``; or ``None``
``event``           the last event that caused the firing (``event.resource.id``,
                    ``event.payload.rows``, ...), or ``None`` for an absence
``events``          every event that caused it, oldest first
``expected``        for absences: what was expected (``count``, ``names``)
``arrived``         for absences: how many matching events arrived
==================  =============================================================

In JSON-valued fields (a webhook's body, an emitted payload, run parameters:
``render_value(..., native=True)``) a string that is one expression and nothing else,
``"{{ event.payload.rows }}"``, keeps the expression's type when it has a JSON form
(a number, a bool, null, a list, an object): ``{"rows": 3}``, not ``{"rows": "3"}``.
Anything else (text around the expression, a datetime) renders to a string as usual.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
from collections.abc import Iterator
from typing import Any

import jinja2

from interlock.rules.template_checks import CONTEXT_NAMES, template_problem
from interlock.rules.template_sandbox import (
    MAX_OUTPUT,
    BoundedEnvironment,
    RenderScope,
    TemplateLimitError,
    in_render_scope,
)

__all__ = [
    "CONTEXT_NAMES",
    "RenderScope",
    "TemplateError",
    "check_template",
    "render",
    "render_value",
    "template_strings",
]

_ONE_EXPRESSION = re.compile(r"\s*\{\{(?P<expression>(?:(?!\}\}|\{\{|\{%|\{#).)+)\}\}\s*", re.S)


class TemplateError(ValueError):
    """A template does not parse or does not render; the message says where."""


@functools.cache
def _environment() -> BoundedEnvironment:
    return BoundedEnvironment()


@functools.lru_cache(maxsize=4096)
def _compiled(text: str) -> jinja2.Template:
    environment = _environment()
    try:
        return environment.from_string(environment.parse_guarded(text))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error on line {exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"template error: {exc.message}") from exc


def check_template(text: str) -> str | None:
    """Return why ``text`` cannot be an action template, or ``None`` if it can.

    See :func:`interlock.rules.template_checks.template_problem` for what is checked.
    """
    if "{" not in text:
        return None
    return template_problem(text)


def render(text: str, context: dict[str, Any]) -> str:
    """Render one template string in the sandbox, within the render's budget.

    Raises:
        TemplateError: it does not parse, names something the context lacks, does
            something the sandbox forbids, goes past a limit, or fails in any other way
            (a division by zero, adding a number to a string, ...).
    """
    if "{" not in text:
        return text
    with _scope(), _errors(context):
        template = _compiled(text)
        size = 0
        parts = []
        for part in template.root_render_func(template.new_context(context)):
            size += len(part)
            if size > MAX_OUTPUT:
                raise TemplateLimitError(f"the output is longer than {MAX_OUTPUT:,} characters")
            parts.append(part)
        return "".join(parts)


def _scope() -> RenderScope | _NoScope:
    """A fresh budget, unless the caller opened a scope for several strings."""
    return _NO_SCOPE if in_render_scope() else RenderScope()


class _NoScope:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


_NO_SCOPE = _NoScope()


@contextlib.contextmanager
def _errors(context: dict[str, Any]) -> Iterator[None]:
    """Every error while rendering, as :class:`TemplateError` saying what went wrong."""
    try:
        yield
    except TemplateError:
        raise
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{exc.message} (available: {', '.join(sorted(context))})") from exc
    except TemplateLimitError as exc:
        raise TemplateError(f"the template exceeds a limit: {exc}") from exc
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"not allowed in a template: {exc}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(str(exc)) from exc
    except Exception as exc:
        raise TemplateError(f"{type(exc).__name__}: {exc}") from exc


def render_value(value: Any, context: dict[str, Any], *, native: bool = False) -> Any:
    """Render every string inside a JSON-like value (dicts, lists), keeping the shape.

    With ``native``, a string that is exactly one ``{{ expression }}`` becomes the
    expression's value when that has a JSON form (see the module documentation). The
    strings of one value share one budget.
    """
    with _scope():
        return _render_value(value, context, native)


def _render_value(value: Any, context: dict[str, Any], native: bool) -> Any:
    if isinstance(value, str):
        if native and (single := _ONE_EXPRESSION.fullmatch(value)):
            found = _evaluate(single["expression"], context)
            if _is_json(found):
                return _json_copy(found)
        return render(value, context)
    if isinstance(value, dict):
        return {key: _render_value(item, context, native) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_value(item, context, native) for item in value]
    return value


@functools.lru_cache(maxsize=4096)
def _expression(text: str) -> jinja2.Template:
    """A template assigning the expression's value to ``result``, guarded.

    As Jinja's own ``compile_expression`` does, with the loops and concatenations of
    the expression routed through the budget like every template's.
    """
    environment = _environment()
    try:
        tree = environment.parse_guarded("{% set result = " + text + " %}")
        return environment.from_string(tree)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error on line {exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"template error: {exc.message}") from exc


def _evaluate(text: str, context: dict[str, Any]) -> Any:
    """The value of one expression, with the errors :func:`render` would give."""
    with _scope(), _errors(context):
        template = _expression(text)
        rendered = template.new_context(context)
        for _ in template.root_render_func(rendered):
            pass
        found = rendered.vars["result"]
        if isinstance(found, jinja2.Undefined):
            str(found)  # StrictUndefined raises here, naming what is missing
    return found


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return not isinstance(value, float) or math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_is_json(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_json(item) for key, item in value.items())
    return False


def _json_copy(value: Any) -> Any:
    """``value`` as plain JSON types (tuples become lists; nothing shared with the context)."""
    if isinstance(value, list | tuple):
        return [_json_copy(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    return value


def template_strings(value: Any) -> list[tuple[str, str]]:
    """Every (path, string) inside a JSON-like value, for validation."""
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        found.append(("", value))
    elif isinstance(value, dict):
        for key, item in value.items():
            found.extend((f".{key}{path}", text) for path, text in template_strings(item))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend((f"[{index}]{path}", text) for path, text in template_strings(item))
    return found
