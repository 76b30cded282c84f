"""What is checked about a template when its rule is validated (at apply, not at 09:00).

:func:`template_problem` returns why a template cannot be used, or ``None``:

- it does not parse, or names a filter or test that does not exist;
- it uses a tag actions have no use for and that would make its cost unbounded:
  ``macro``, ``call``, ``import``, ``from``, ``include``, ``extends``, ``block``;
- it names something the firing's context does not have (``{{ evnt }}``): the names are
  :data:`CONTEXT_NAMES` plus the template globals and its own ``set`` / loop variables;
- it reaches for a private attribute (``__class__``, ``_secret``), which the sandbox
  would refuse when the rule fires;
- it holds a constant expression that always fails (``{{ 1/0 }}``) or is too costly to
  evaluate (``{{ 9**(9**7) }}``), computed here with the sandbox's guards, so
  validation itself never runs a costly computation.
"""

from __future__ import annotations

import functools
import operator
from typing import Any, Final

import jinja2
from jinja2 import meta, nodes

from interlock.rules.template_sandbox import (
    BoundedEnvironment,
    TemplateLimitError,
    check_size,
    guard_binop,
)

__all__ = ["CONTEXT_NAMES", "template_problem"]

CONTEXT_NAMES: Final = frozenset(
    {"rule", "firing", "key", "window", "event", "events", "expected", "arrived"}
)
"""The names a firing's template context holds (see :mod:`interlock.rules.templates`)."""

_FORBIDDEN: Final[dict[type[nodes.Node], str]] = {
    nodes.Macro: "macro",
    nodes.CallBlock: "call",
    nodes.Import: "import",
    nodes.FromImport: "from ... import",
    nodes.Include: "include",
    nodes.Extends: "extends",
    nodes.Block: "block",
}
_BINARY: Final[dict[type[nodes.Node], tuple[str, Any]]] = {
    nodes.Add: ("+", operator.add),
    nodes.Sub: ("-", operator.sub),
    nodes.Mul: ("*", operator.mul),
    nodes.Div: ("/", operator.truediv),
    nodes.FloorDiv: ("//", operator.floordiv),
    nodes.Pow: ("**", operator.pow),
    nodes.Mod: ("%", operator.mod),
}


class _NotConstant(Exception):
    """The expression depends on the context."""


@functools.cache
def _environment() -> BoundedEnvironment:
    return BoundedEnvironment()


@functools.lru_cache(maxsize=16_384)
def template_problem(text: str, names: frozenset[str] = CONTEXT_NAMES) -> str | None:
    """Why ``text`` cannot be used as an action template, or ``None`` if it can.

    Cached: rules share their templates (every rule notifying with the default title).
    """
    environment = _environment()
    try:
        tree = environment.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return f"template syntax error on line {exc.lineno}: {exc.message}"
    for node_type, tag in _FORBIDDEN.items():
        found = next(tree.find_all(node_type), None)
        if found is not None:
            return (
                f"the tag '{tag}' (line {found.lineno}) is not available in action templates "
                "(expressions, filters, if, for and set are)"
            )
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        known = environment.filters if isinstance(node, nodes.Filter) else environment.tests
        if node.name not in known or node.name.startswith("__"):
            kind = "filter" if isinstance(node, nodes.Filter) else "test"
            return f"there is no {kind} named {node.name!r} (line {node.lineno})"
    unknown = sorted(meta.find_undeclared_variables(tree) - names - set(environment.globals))
    if unknown:
        return (
            f"unknown name{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"(available: {', '.join(sorted(names))})"
        )
    private = _private_reference(tree)
    if private is not None:
        return f"the attribute {private!r} is private: templates cannot reach it"
    problem = _constant_problem(tree)
    if problem is not None:
        return problem
    return None


def _private_reference(tree: nodes.Template) -> str | None:
    for node in tree.find_all(nodes.Getattr):
        if node.attr.startswith("_"):
            return node.attr
    for item in tree.find_all(nodes.Getitem):
        if isinstance(item.arg, nodes.Const) and str(item.arg.value).startswith("_"):
            return str(item.arg.value)
    for call in tree.find_all(nodes.Filter):
        first = call.args[0] if call.name == "attr" and call.args else None
        if isinstance(first, nodes.Const) and str(first.value).startswith("_"):
            return str(first.value)
    return None


def _constant_problem(tree: nodes.Template) -> str | None:
    """Evaluate every constant arithmetic expression with the sandbox's guards."""
    for expression in tree.find_all((nodes.BinExpr, nodes.UnaryExpr, nodes.Concat)):
        try:
            _constant(expression)
        except _NotConstant:
            continue
        except TemplateLimitError as exc:
            return f"a constant expression is too costly to evaluate: {exc}"
        except (ArithmeticError, TypeError, ValueError) as exc:
            return f"a constant expression always fails: {type(exc).__name__}: {exc}"
    return None


def _constant(node: nodes.Node) -> Any:
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.List | nodes.Tuple):
        return check_size([_constant(item) for item in node.items])
    if isinstance(node, nodes.Neg):
        return -_constant(node.node)
    if isinstance(node, nodes.Pos):
        return +_constant(node.node)
    if isinstance(node, nodes.Concat):
        return check_size("".join(str(_constant(item)) for item in node.nodes))
    binary = _BINARY.get(type(node))
    if binary is not None:
        assert isinstance(node, nodes.BinExpr)
        left, right = _constant(node.left), _constant(node.right)
        symbol, function = binary
        guard_binop(symbol, left, right)
        return check_size(function(left, right))
    raise _NotConstant
