"""Scenario files: the scenarios of :class:`~.scenario.Scenario` written as TOML.

A file (``sales.test.toml``, next to the rules) names the rule modules it tests and holds
``[[scenario]]`` tables; the format is documented in ``docs/rules-testing.md``. Reading
one checks every field — its type, its value, unknown keys — and reports every problem as
a :class:`~.errors.ScenarioFileError` with the file, the line and the field
(``scenario[2].events[0].at``), before anything runs.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interlock.rules.testing.errors import ScenarioFileError
from interlock.rules.testing.expectations import Expected, TimeLike
from interlock.rules.testing.times import TimeValueError, parse_lag, parse_time, zone_named
from interlock.rules.testing.toml_lines import Path as FieldPath
from interlock.rules.testing.toml_lines import line_of

__all__ = ["EventSpec", "ScenarioFile", "ScenarioSpec", "read_scenario_file"]

_FILE_KEYS = {"rules", "select", "tz", "lateness_tolerance", "scenario"}
_SCENARIO_KEYS = {"name", "start", "until", "tz", "lag", "select", "events", "expect"}
_EVENT_KEYS = {
    "at", "event", "resource", "payload", "related", "source", "id", "published", "every", "until",
}  # fmt: skip
_EXPECT_KEYS = {"rule", "status", "key", "window", "at", "expected", "arrived", "late"}


@dataclass(frozen=True, kw_only=True)
class EventSpec:
    """One event of a scenario file."""

    at: TimeLike
    event: str
    resource: str | dict[str, str]
    payload: dict[str, Any] = field(default_factory=dict)
    related: list[dict[str, str]] = field(default_factory=list)
    source: str = "scenario"
    id: str | None = None
    published: TimeLike | None = None
    every: dt.timedelta | None = None
    """Repeated at this pace from ``at`` to ``until`` (both included)."""
    until: TimeLike | None = None
    line: int | None = None


@dataclass(frozen=True, kw_only=True)
class ScenarioSpec:
    """One ``[[scenario]]``: its rules' names, times, events and expected firings."""

    name: str
    start: TimeLike
    until: TimeLike
    tz: str
    lag: dt.timedelta
    select: list[str] | None
    events: list[EventSpec]
    expect: list[Expected]
    line: int | None


@dataclass(frozen=True, kw_only=True)
class ScenarioFile:
    """A scenario file read and checked."""

    path: Path
    rules: list[Path]
    """Rule modules (files or folders), relative paths resolved against the file's folder."""
    lateness_tolerance: dt.timedelta
    scenarios: list[ScenarioSpec]


class _Reader:
    """Checks values at paths, collecting a :class:`ScenarioFileError` for each problem."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self.problems: list[ScenarioFileError] = []

    def problem(self, where: FieldPath, message: str) -> None:
        name = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in where)
        self.problems.append(
            ScenarioFileError(str(self.path), line_of(self.text, where), name.lstrip("."), message)
        )

    def line(self, where: FieldPath) -> int | None:
        return line_of(self.text, where)

    def table(self, value: object, where: FieldPath, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.problem(where, f"must be a table, not {_kind(value)}")
            return {}
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                known = ", ".join(sorted(allowed))
                self.problem((*where, key), f"is not a known field{hint}; the fields are: {known}")
        return value

    def required(self, table: dict[str, Any], key: str, where: FieldPath) -> object:
        if key not in table:
            self.problem(where, f"{key!r} is required")
        return table.get(key)

    def string(self, value: object, where: FieldPath) -> str | None:
        if value is None:  # missing: reported by required()
            return None
        if isinstance(value, str) and value:
            return value
        self.problem(where, f"must be a non-empty string, not {_kind(value)}")
        return None

    def strings(self, value: object, where: FieldPath) -> list[str]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            self.problem(where, f"must be a string or a list of strings, not {_kind(value)}")
            return []
        return list(items)

    def time(self, value: object, where: FieldPath, zone: str) -> TimeLike | None:
        if value is None:  # missing: reported by required()
            return None
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = value.isoformat()
        if isinstance(value, dt.time):
            self.problem(where, "is a time of day without a date: write '2026-03-27 08:15'")
            return None
        if not isinstance(value, str | dt.datetime):
            self.problem(where, f"must be a time like '2026-03-27 08:15', not {_kind(value)}")
            return None
        checked: TimeLike | None = self.check(
            value, where, lambda v: parse_time(v, zone_named(zone))
        )
        return checked

    def check(self, value: Any, where: FieldPath, parse: Callable[[Any], object]) -> Any:
        try:
            parse(value)
        except TimeValueError as exc:
            self.problem(where, str(exc))
            return None
        return value

    def count(self, value: object, where: FieldPath) -> int | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        self.problem(where, f"must be a whole number of events, not {_kind(value)}")
        return None


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}" if value else "an empty string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def read_scenario_file(path: Path) -> ScenarioFile:
    """Read and check the scenario file at ``path``.

    Raises:
        ScenarioFileError: it cannot be read or parsed (one problem), or its content is
            wrong (the first problem; :attr:`ScenarioFileError.others` holds the rest).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFileError(str(path), None, "", f"cannot be read: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        line = int(found[1]) if found else None
        raise ScenarioFileError(str(path), line, "", f"is not valid TOML: {exc}") from exc
    reader = _Reader(path, text)
    result = _read(reader, data)
    if reader.problems:
        first = reader.problems[0]
        first.others = reader.problems[1:]
        raise first
    assert result is not None
    return result


def _read(reader: _Reader, data: dict[str, Any]) -> ScenarioFile | None:
    reader.table(data, (), _FILE_KEYS)
    rules = reader.strings(reader.required(data, "rules", ("rules",)), ("rules",))
    select = reader.strings(data["select"], ("select",)) if "select" in data else None
    tz = "UTC"
    if "tz" in data:
        tz = reader.string(data["tz"], ("tz",)) or "UTC"
        tz = tz if reader.check(tz, ("tz",), zone_named) is not None else "UTC"
    tolerance = dt.timedelta(seconds=30)
    if "lateness_tolerance" in data:
        found = reader.check(data["lateness_tolerance"], ("lateness_tolerance",), parse_lag)
        tolerance = parse_lag(found) if found is not None else tolerance
    raw = reader.required(data, "scenario", ("scenario",))
    if raw is not None and not isinstance(raw, list):
        reader.problem(("scenario",), "must be [[scenario]] tables")
        raw = []
    scenarios = [
        _scenario(reader, item, ("scenario", index), tz, select)
        for index, item in enumerate(raw or [])
    ]
    names = [s.name for s in scenarios]
    for index, name in enumerate(names):
        if name in names[:index]:
            reader.problem(("scenario", index, "name"), f"{name!r} names another scenario too")
    base = reader.path.parent
    return ScenarioFile(
        path=reader.path,
        rules=[base / rule for rule in rules],
        lateness_tolerance=tolerance,
        scenarios=scenarios,
    )


def _scenario(
    reader: _Reader, value: object, where: FieldPath, tz: str, select: list[str] | None
) -> ScenarioSpec:
    table = reader.table(value, where, _SCENARIO_KEYS)
    name = reader.string(reader.required(table, "name", where), (*where, "name")) or "?"
    if "tz" in table:
        own = reader.string(table["tz"], (*where, "tz"))
        if own is not None and reader.check(own, (*where, "tz"), zone_named) is not None:
            tz = own
    start = reader.time(reader.required(table, "start", where), (*where, "start"), tz)
    until = reader.time(reader.required(table, "until", where), (*where, "until"), tz)
    if start is not None and until is not None:
        zone = zone_named(tz)
        if parse_time(until, zone) < parse_time(start, zone):
            reader.problem((*where, "until"), "is before start")
    lag = dt.timedelta()
    if "lag" in table:
        found = reader.check(table["lag"], (*where, "lag"), parse_lag)
        lag = parse_lag(found) if found is not None else lag
    if "select" in table:
        select = reader.strings(table["select"], (*where, "select"))
    events = [
        _event(reader, item, (*where, "events", index), tz)
        for index, item in enumerate(_items(reader, table, "events", where))
    ]
    expect = [
        _expect(reader, item, (*where, "expect", index), tz)
        for index, item in enumerate(_items(reader, table, "expect", where))
    ]
    return ScenarioSpec(
        name=name, start=start or "", until=until or "", tz=tz, lag=lag, select=select,
        events=events, expect=expect, line=reader.line(where),
    )  # fmt: skip


def _items(reader: _Reader, table: dict[str, Any], key: str, where: FieldPath) -> list[object]:
    value = table.get(key, [])
    if not isinstance(value, list):
        reader.problem((*where, key), f"must be a list of tables ([[scenario.{key}]])")
        return []
    return value


def _event(reader: _Reader, value: object, where: FieldPath, tz: str) -> EventSpec:
    table = reader.table(value, where, _EVENT_KEYS)
    at = reader.time(reader.required(table, "at", where), (*where, "at"), tz)
    name = reader.string(reader.required(table, "event", where), (*where, "event"))
    resource = reader.required(table, "resource", where)
    if not isinstance(resource, str | dict) or not resource:
        reader.problem((*where, "resource"), "must be an id string or a table with 'id'")
        resource = "?"
    payload = table.get("payload", {})
    if not isinstance(payload, dict):
        reader.problem((*where, "payload"), f"must be a table, not {_kind(payload)}")
        payload = {}
    related = table.get("related", [])
    if not isinstance(related, list) or not all(isinstance(item, dict) for item in related):
        reader.problem((*where, "related"), "must be a list of tables with 'id' and 'role'")
        related = []
    published = None
    if "published" in table:
        published = reader.time(table["published"], (*where, "published"), tz)
    every, until = _repeat(reader, table, where, tz)
    if every is not None and ("published" in table or "id" in table):
        reader.problem(where, "a repeated event ('every') takes no 'published' or 'id'")
    source = reader.string(table.get("source", "scenario"), (*where, "source")) or "scenario"
    event_id = reader.string(table["id"], (*where, "id")) if "id" in table else None
    return EventSpec(
        at=at or "", event=name or "?", resource=resource, payload=_plain(payload),
        related=related, source=source, id=event_id, published=published,
        every=every, until=until, line=reader.line(where),
    )  # fmt: skip


def _repeat(
    reader: _Reader, table: dict[str, Any], where: FieldPath, tz: str
) -> tuple[dt.timedelta | None, TimeLike | None]:
    """``every`` and ``until`` of a repeated event: both, or neither."""
    if "every" not in table and "until" not in table:
        return None, None
    if "every" not in table or "until" not in table:
        missing = "until" if "every" in table else "every"
        reader.problem(
            where, f"a repeated event needs both 'every' and 'until' ({missing!r} is missing)"
        )
        return None, None
    every = None
    found = reader.check(table["every"], (*where, "every"), parse_lag)
    if found is not None:
        every = parse_lag(found)
        if every <= dt.timedelta():
            reader.problem((*where, "every"), "must be longer than 0s")
            every = None
    until = reader.time(table["until"], (*where, "until"), tz)
    return (every, until) if every is not None and until is not None else (None, None)


def _plain(value: Any) -> Any:
    """TOML values as JSON values (dates and times become ISO strings)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value


def _expect(reader: _Reader, value: object, where: FieldPath, tz: str) -> Expected:
    table = reader.table(value, where, _EXPECT_KEYS)
    rule = reader.string(reader.required(table, "rule", where), (*where, "rule")) or "?"
    status = table.get("status", "fired")
    if status not in ("fired", "resolved"):
        reader.problem((*where, "status"), f"must be 'fired' or 'resolved', not {_kind(status)}")
        status = "fired"
    key = table.get("key", "")
    if not isinstance(key, str):
        reader.problem((*where, "key"), f"must be a string, not {_kind(key)}")
        key = ""
    window = None
    if "window" in table:
        raw = table["window"]
        if not isinstance(raw, list) or len(raw) != 2:
            reader.problem((*where, "window"), "must be [start, deadline], two times")
        else:
            start = reader.time(raw[0], (*where, "window"), tz)
            end = reader.time(raw[1], (*where, "window"), tz)
            window = (start, end) if start is not None and end is not None else None
    at = reader.time(table["at"], (*where, "at"), tz) if "at" in table else None
    late = table.get("late", False)
    if not isinstance(late, bool):
        reader.problem((*where, "late"), f"must be true or false, not {_kind(late)}")
        late = False
    return Expected(
        rule=rule, status=status, key=key, window=window, at=at,
        expected=reader.count(table.get("expected"), (*where, "expected")),
        arrived=reader.count(table.get("arrived"), (*where, "arrived")),
        late=late, line=reader.line(where),
    )  # fmt: skip
