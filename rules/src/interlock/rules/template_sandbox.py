"""The sandbox action templates render in: Jinja's immutable sandbox, with a bounded cost.

Rule authors write templates; whoever publishes events chooses the values they render
over. Neither may make a render run long or grow large, so on top of Jinja's
:class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` (no private attributes, no
mutation of lists and dicts) every render carries a :class:`Budget`:

- **operations**: each loop iteration, call, attribute or item lookup and guarded
  operator costs one; past :data:`MAX_OPERATIONS` the render stops;
- **sizes**: a string built by ``*``, ``+``, ``~``, ``%``, ``format``, ``join`` or
  ``replace`` may hold at most :data:`MAX_STRING` characters, a list at most
  :data:`MAX_ITEMS` items, an integer made by ``*`` or ``**`` at most
  :data:`MAX_INT_BITS` bits — checked *before* the operation allocates, where the
  size is known in advance (a width, a repeat count, an exponent);
- **output**: at most :data:`MAX_OUTPUT` characters.

What a template may call is an allow-list: the filters in :data:`FILTERS`, the globals
``range`` (at most 100,000 items, Jinja's own limit) and ``dict``, and the methods of
strings, lists, dicts and datetimes in :data:`_METHODS`. There are no macros, imports,
includes or namespaces (:mod:`interlock.rules.template_checks` refuses them at apply):
an action's template is an expression with filters, ``if``, ``for`` and ``set``.

Exceeding a limit raises :class:`TemplateLimitError`; the caller turns it, like any
other error while rendering, into a failure of that one action.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any, Final

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import pass_context
from jinja2.visitor import NodeTransformer

__all__ = [
    "FILTERS",
    "LOOP_GUARD",
    "MAX_INT_BITS",
    "MAX_ITEMS",
    "MAX_OPERATIONS",
    "MAX_OUTPUT",
    "MAX_STRING",
    "SIZE_GUARD",
    "BoundedEnvironment",
    "Budget",
    "RenderScope",
    "TemplateLimitError",
    "budget",
    "check_size",
    "guard_binop",
    "in_render_scope",
]

MAX_OPERATIONS: Final = 200_000
MAX_OUTPUT: Final = 1_048_576
MAX_STRING: Final = 1_048_576
MAX_ITEMS: Final = 100_000
MAX_INT_BITS: Final = 4096

LOOP_GUARD: Final = "__interlock_loop"
"""The filter every ``for`` loop's iterable goes through (charges one operation per item)."""
SIZE_GUARD: Final = "__interlock_size"
"""The filter every ``~`` concatenation goes through (checks the size of its result)."""


class TemplateLimitError(SecurityError):
    """A render went past a limit of its budget; the message names the limit."""


class Budget:
    """The operations left to one render. One per render, held by :func:`budget`."""

    __slots__ = ("left",)

    def __init__(self, operations: int = MAX_OPERATIONS) -> None:
        self.left = operations

    def charge(self, count: int = 1) -> None:
        """Spend ``count`` operations; raise once none are left."""
        self.left -= count
        if self.left < 0:
            raise TemplateLimitError(
                f"the template took more than {MAX_OPERATIONS:,} operations (loop "
                "iterations, calls, lookups); simplify it"
            )


class _Current(threading.local):
    budget: Budget | None = None


_current = _Current()
_UNLIMITED = Budget(operations=1 << 62)


def budget() -> Budget:
    """The budget of the render under way in this thread (unlimited outside a render)."""
    return _current.budget or _UNLIMITED


def in_render_scope() -> bool:
    """Whether a :class:`RenderScope` is open in this thread."""
    return _current.budget is not None


class RenderScope:
    """``with RenderScope():`` gives the renders inside it one fresh :class:`Budget`."""

    def __init__(self, operations: int = MAX_OPERATIONS) -> None:
        self._budget = Budget(operations)
        self._outer: Budget | None = None

    def __enter__(self) -> Budget:
        self._outer = _current.budget
        _current.budget = self._budget
        return self._budget

    def __exit__(self, *exc_info: object) -> None:
        _current.budget = self._outer


# -- sizes -----------------------------------------------------------------------------


def _too_big(what: str, size: int, limit: int, unit: str) -> TemplateLimitError:
    return TemplateLimitError(
        f"{what} would be {size:,} {unit}; a template may build at most {limit:,}"
    )


def check_size(value: Any, what: str = "a value") -> Any:
    """Return ``value`` if it is within the size limits, else raise."""
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise _too_big(what, len(value), MAX_STRING, "characters")
    elif isinstance(value, list | tuple | dict):
        if len(value) > MAX_ITEMS:
            raise _too_big(what, len(value), MAX_ITEMS, "items")
    elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _too_big(what, value.bit_length(), MAX_INT_BITS, "bits")
    return value


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple | dict) else 0


def _repeat_size(sequence: Any, count: Any) -> None:
    if isinstance(count, int) and isinstance(sequence, str | list | tuple):
        size = len(sequence) * max(count, 0)
        limit = MAX_STRING if isinstance(sequence, str) else MAX_ITEMS
        if size > limit:
            unit = "characters" if isinstance(sequence, str) else "items"
            raise _too_big("repeating a sequence", size, limit, unit)


_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def check_percent_format(text: str) -> None:
    """Refuse ``%`` formats whose width or precision could build a huge string."""
    for match in _PERCENT_FIELD.finditer(text):
        for group in match.groups():
            if group == "*":
                raise TemplateLimitError("a '%' format may not take its width from an argument")
            if group and int(group) > MAX_STRING:
                raise _too_big("a '%' format's width", int(group), MAX_STRING, "characters")


def _check_format_spec(spec: str) -> None:
    for number in re.findall(r"\d+", spec):
        if int(number) > MAX_STRING:
            raise _too_big("a format width", int(number), MAX_STRING, "characters")


def guard_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operator whose result would break a size limit, before computing it."""
    both_int = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and both_int:
        base, exponent = abs(left), right
        if exponent > 0 and base > 1 and exponent * base.bit_length() > MAX_INT_BITS:
            raise _too_big("a power", exponent * base.bit_length(), MAX_INT_BITS, "bits")
    elif operator == "*":
        if both_int:
            bits = left.bit_length() + right.bit_length()
            if bits > MAX_INT_BITS:
                raise _too_big("a product", bits, MAX_INT_BITS, "bits")
        _repeat_size(left, right)
        _repeat_size(right, left)
    elif operator == "+":
        if isinstance(left, str | list | tuple) and type(left) is type(right):
            limit = MAX_STRING if isinstance(left, str) else MAX_ITEMS
            if len(left) + len(right) > limit:
                raise _too_big("a concatenation", len(left) + len(right), limit, "items")
    elif operator == "%" and isinstance(left, str):
        check_percent_format(left)


# -- methods ---------------------------------------------------------------------------

_STR_METHODS = frozenset(
    {
        "capitalize", "casefold", "count", "endswith", "find", "format", "index",
        "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "islower", "isnumeric",
        "isspace", "istitle", "isupper", "join", "lower", "lstrip", "partition",
        "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rpartition",
        "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase",
        "title", "upper",
    }
)  # fmt: skip
_METHODS: dict[type, frozenset[str]] = {
    str: _STR_METHODS,
    list: frozenset({"count", "index", "copy"}),
    tuple: frozenset({"count", "index"}),
    dict: frozenset({"get", "items", "keys", "values", "copy"}),
    dt.datetime: frozenset(
        {
            "astimezone", "date", "day", "hour", "isocalendar", "isoformat", "isoweekday",
            "minute", "month", "replace", "strftime", "time", "timestamp", "timetuple",
            "weekday", "year", "utcoffset", "tzname",
        }
    ),
    dt.date: frozenset(
        {"isocalendar", "isoformat", "isoweekday", "replace", "strftime", "weekday"}
    ),
    dt.time: frozenset({"isoformat", "replace", "strftime"}),
    dt.timedelta: frozenset({"total_seconds"}),
}  # fmt: skip


def _method_allowed(method: Any) -> bool:
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    for kind, names in _METHODS.items():
        if type(owner) is kind:
            return name in names
    return False


def _check_method_call(method: Any, args: tuple[Any, ...]) -> None:
    owner = method.__self__
    name = method.__name__
    if name == "replace" and isinstance(owner, str) and len(args) >= 2:
        _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
    elif name == "join" and isinstance(owner, str) and args:
        _check_join(owner, args[0])
    elif name == "strftime" and args and isinstance(args[0], str):
        check_size(args[0], "a strftime format")


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    size = len(text) + found * (len(new) - len(old))
    if size > MAX_STRING:
        raise _too_big("a replacement", size, MAX_STRING, "characters")


def _check_join(separator: Any, items: Any) -> None:
    if isinstance(items, str | list | tuple | dict):
        count = len(items)
        size = sum(len(item) for item in items if isinstance(item, str))
        size += max(count - 1, 0) * len(separator) if isinstance(separator, str) else 0
        if count > MAX_ITEMS or size > MAX_STRING:
            raise _too_big("a join", size, MAX_STRING, "characters")


class _BoundedFormatter(SandboxedFormatter):
    """``str.format`` in the sandbox, refusing widths that would build huge strings."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        _check_format_spec(format_spec)
        return super().format_field(value, format_spec)


# -- filters ---------------------------------------------------------------------------

_ALLOWED_FILTERS = (
    "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape",
    "filesizeformat", "first", "float", "forceescape", "format", "groupby", "int",
    "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject",
    "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "sort",
    "string", "striptags", "sum", "title", "tojson", "trim", "truncate", "unique",
    "upper", "urlencode", "wordcount",
)  # fmt: skip
"""Jinja's filters a template may use. Left out: ``random`` (a retry must render the
same), ``center``, ``indent``, ``wordwrap``, ``batch``, ``slice``, ``pprint``,
``urlize``, ``xmlattr`` (sizes set by an argument, or no use in an action)."""

_COLLECTION_FILTERS = frozenset(
    {"dictsort", "groupby", "list", "map", "reject", "rejectattr", "reverse", "select",
     "selectattr", "sort", "sum", "unique", "max", "min", "join"}
)  # fmt: skip


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    passes = getattr(function, "jinja_pass_arg", None) is not None
    collection = name in _COLLECTION_FILTERS

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        budget().charge()
        position = 1 if passes else 0
        value = args[position] if len(args) > position else None
        if collection and not isinstance(value, str) and _length(value) > MAX_ITEMS:
            raise _too_big(f"the input of '{name}'", _length(value), MAX_ITEMS, "items")
        rest = args[position + 1 :]
        if name == "format" and isinstance(value, str):
            check_percent_format(value)
        elif name == "replace" and len(rest) >= 2:
            _check_replace(value, *rest[:3])
        elif name == "join":
            separator = rest[0] if rest else kwargs.get("d", "")
            _check_join(separator, value)
        return check_size(function(*args, **kwargs), f"the result of '{name}'")

    return bounded


# Both guards take the context so that Jinja never folds them into a constant at compile
# time (a constant generator would be spent by the first render).
@pass_context
def _loop_guard(context: Context, iterable: Any) -> Iterator[Any]:
    """The iterable of a ``for`` loop, one operation per item."""
    charge = budget().charge
    for item in iterable:
        charge()
        yield item


@pass_context
def _size_guard(context: Context, value: Any) -> Any:
    return check_size(value, "a concatenation")


FILTERS: Final[dict[str, Callable[..., Any]]] = {
    **{name: _bounded_filter(name, JINJA_FILTERS[name]) for name in _ALLOWED_FILTERS},
    LOOP_GUARD: _loop_guard,
    SIZE_GUARD: _size_guard,
}
"""The filters of the template environment: the allowed Jinja ones, bounded, and the
two guards the compiled templates call."""


# -- the environment -------------------------------------------------------------------


class _Guards(NodeTransformer):
    """Routes every loop's iterable and every ``~`` through the budget's guards."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, LOOP_GUARD, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, SIZE_GUARD, [], [], None, None, lineno=node.lineno)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with the limits of this module (see its docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(
            undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
        )
        self.filters = dict(FILTERS)
        self.globals = {"range": self.globals["range"], "dict": dict}

    def parse_guarded(self, source: str) -> nodes.Template:
        """Parse ``source`` and route its loops and concatenations through the guards."""
        guarded: nodes.Template = _Guards().visit(self.parse(source))
        return guarded

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """A guarded operator: refused before computing when the result would be too big."""
        budget().charge()
        guard_binop(operator, left, right)
        return check_size(self.binop_table[operator](left, right), f"the result of {operator!r}")

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Attribute lookup, one operation."""
        budget().charge()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """Item lookup, one operation."""
        budget().charge()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format``/``format_map`` through a formatter that refuses huge widths."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or (
            value.__name__ not in ("format", "format_map")
        ):
            return None
        text = value.__self__
        if not isinstance(text, str):
            return None
        formatter = _BoundedFormatter(self)
        is_map = value.__name__ == "format_map"

        def formatted(*args: Any, **kwargs: Any) -> str:
            budget().charge()
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one mapping")
                kwargs, args = args[0], ()
            return str(check_size(formatter.vformat(text, args, kwargs), "a formatted string"))

        formatted.interlock_bounded = True  # type: ignore[attr-defined]  # see call()
        return formatted

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """A call from a template: allowed callables only, sizes checked."""
        budget().charge()
        if isinstance(__obj, types.BuiltinMethodType | types.MethodType) and not isinstance(
            getattr(__obj, "__self__", None), types.ModuleType
        ):
            if not _method_allowed(__obj):
                owner = type(getattr(__obj, "__self__", None)).__name__
                raise SecurityError(
                    f"calling {owner}.{getattr(__obj, '__name__', '?')}() is not allowed in "
                    "a template"
                )
            _check_method_call(__obj, args)
        elif not (
            __obj is dict
            or __obj is __self.globals.get("range")
            or getattr(__obj, "interlock_bounded", False)
            or _jinja_helper(__obj)
        ):
            raise SecurityError(f"calling {__obj!r} is not allowed in a template")
        return check_size(__context.call(__obj, *args, **kwargs), "the result of a call")


def _jinja_helper(obj: Any) -> bool:
    """Callables Jinja itself hands to templates (``loop.cycle``, a recursive ``loop``)."""
    owner = getattr(obj, "__self__", obj)
    return type(owner).__module__ == "jinja2.runtime"
