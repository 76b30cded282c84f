"""Reading an adapter's options from its TOML section, each mistake named by its option.

Shared by the adapters that must not import each other's dependencies (S3, Airflow).

:class:`OptionReader` hands out typed values and remembers which options it was asked
for, so :meth:`~OptionReader.finish` can refuse a misspelt option (``buckt = ...``)
instead of silently ignoring it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from interlock.adapters.base import AdapterConfigError
from interlock.sdk.durations import format_duration, parse_duration

__all__ = ["OptionReader"]


class OptionReader:
    """Typed access to the options of one adapter section."""

    def __init__(self, adapter: str, options: Mapping[str, Any]) -> None:
        self.adapter = adapter
        self._options = dict(options)
        self._asked: set[str] = set()

    def error(self, option: str, reason: str) -> AdapterConfigError:
        """An :class:`AdapterConfigError` about ``option`` of this adapter."""
        return AdapterConfigError(self.adapter, option, reason)

    def _get(self, option: str) -> Any:
        self._asked.add(option)
        return self._options.get(option)

    def given(self, option: str) -> bool:
        """Whether the section sets ``option``."""
        return option in self._options

    def required_string(self, option: str, example: str) -> str:
        """A non-empty string that must be set."""
        value = self.string(option)
        if value is None:
            raise self.error(option, f"is required (e.g. {option} = {example!r})")
        return value

    def string(self, option: str, default: str | None = None) -> str | None:
        """A non-empty string, or ``default`` when unset."""
        value = self._get(option)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise self.error(option, f"must be a non-empty string, not {value!r}")
        return value

    def boolean(self, option: str, default: bool) -> bool:
        """``true`` or ``false``."""
        value = self._get(option)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(option, f"must be true or false, not {value!r}")
        return value

    def integer(
        self, option: str, default: int, *, minimum: int, maximum: int | None = None
    ) -> int:
        """A whole number within ``[minimum, maximum]``."""
        value = self._get(option)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(option, f"must be a whole number, not {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"{minimum} to {maximum}"
            raise self.error(option, f"must be {bounds}, not {value}")
        return value

    def duration(
        self, option: str, default: timedelta, *, maximum: timedelta | None = None
    ) -> timedelta:
        """A duration (``"90s"``, ``"15m"``, or a number of seconds), not negative."""
        value = self.optional_duration(option, maximum=maximum)
        return default if value is None else value

    def optional_duration(
        self, option: str, *, maximum: timedelta | None = None
    ) -> timedelta | None:
        """A duration, or ``None`` when unset."""
        value = self._get(option)
        if value is None:
            return None
        try:
            duration = parse_duration(value)
        except ValueError as exc:
            raise self.error(option, str(exc)) from exc
        if duration < timedelta(0):
            raise self.error(option, f"must not be negative, not {value!r}")
        if maximum is not None and duration > maximum:
            raise self.error(option, f"must be at most {format_duration(maximum)}, not {value!r}")
        return duration

    def finish(self, kind: str) -> None:
        """Refuse options nobody asked for: they are misspelt or belong to another kind."""
        unknown = sorted(set(self._options) - self._asked)
        if unknown:
            known = ", ".join(sorted(self._asked))
            raise self.error(unknown[0], f"is not an option of {kind!r} (options: {known})")

    def string_list(self, option: str) -> list[str]:
        """A list of non-empty strings (empty when unset)."""
        value = self._get(option)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(option, f"must be a list of non-empty strings, not {value!r}")
        return list(value)
