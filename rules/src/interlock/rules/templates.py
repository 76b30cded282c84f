"""Jinja templates in actions, rendered in a sandbox over a firing.

Rule authors may not run code, so templates render in Jinja's
:class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` (no attribute access to
internals, no mutation) with :class:`~jinja2.StrictUndefined` (a misspelt name is an
error, not an empty string). The context a firing provides:

==================  =============================================================
``rule``            ``name``, ``description``, ``tags``, ``owner``
``firing``          ``id``, ``status`` (``fired``/``resolved``), ``late``,
                    ``summary``, ``fired_at``
``key``             the ``for_each`` key (a string; empty without ``for_each``)
``window``          ``start``, ``deadline`` (datetimes), or ``None``
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
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["TemplateError", "check_template", "render", "render_value"]

_ONE_EXPRESSION = re.compile(r"\s*\{\{(?P<expression>(?:(?!\}\}|\{\{|\{%|\{#).)+)\}\}\s*", re.S)


class TemplateError(ValueError):
    """A template does not parse or does not render; the message says where."""


@functools.cache
def _environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


@functools.lru_cache(maxsize=4096)
def _compiled(text: str) -> jinja2.Template:
    try:
        return _environment().from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error on line {exc.lineno}: {exc.message}") from exc


def check_template(text: str) -> str | None:
    """Return why ``text`` is not a valid template, or ``None`` if it parses."""
    try:
        _compiled(text)
    except TemplateError as exc:
        return str(exc)
    return None


def render(text: str, context: dict[str, Any]) -> str:
    """Render one template string in the sandbox.

    Raises:
        TemplateError: it does not parse, names something the context lacks, or does
            something the sandbox forbids.
    """
    if "{" not in text:
        return text
    with _errors(context):
        return _compiled(text).render(context)


@contextlib.contextmanager
def _errors(context: dict[str, Any]) -> Iterator[None]:
    """Jinja's errors while rendering, as :class:`TemplateError` saying what went wrong."""
    try:
        yield
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{exc.message} (available: {', '.join(sorted(context))})") from exc
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"not allowed in a template: {exc}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(str(exc)) from exc


def render_value(value: Any, context: dict[str, Any], *, native: bool = False) -> Any:
    """Render every string inside a JSON-like value (dicts, lists), keeping the shape.

    With ``native``, a string that is exactly one ``{{ expression }}`` becomes the
    expression's value when that has a JSON form (see the module documentation).
    """
    if isinstance(value, str):
        if native and (single := _ONE_EXPRESSION.fullmatch(value)):
            found = _evaluate(single["expression"], context)
            if _is_json(found):
                return _json_copy(found)
        return render(value, context)
    if isinstance(value, dict):
        return {key: render_value(item, context, native=native) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, context, native=native) for item in value]
    return value


@functools.lru_cache(maxsize=4096)
def _expression(text: str) -> Any:
    try:
        return _environment().compile_expression(text, undefined_to_none=False)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error on line {exc.lineno}: {exc.message}") from exc


def _evaluate(text: str, context: dict[str, Any]) -> Any:
    """The value of one expression, with the errors :func:`render` would give."""
    with _errors(context):
        found = _expression(text)(**context)
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
