"""Reading an adapter's TOML options: typed, each read once, and a leftover key is a typo.

The database adapters and the Prefect bridge build themselves through :class:`Options`,
so a wrong type, a missing option or a misspelt key fails at start with the adapter's
name, the option and what to write instead
(:class:`~interlock.adapters.base.AdapterConfigError`). It imports nothing beyond the
SDK, so no adapter pulls in another's dependencies through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from interlock.adapters.base import AdapterConfigError
from interlock.sdk.durations import parse_duration

__all__ = ["Options"]


class Options:
    """The options of one ``[adapters.NAME]`` section, minus ``kind`` and ``interval``."""

    def __init__(self, kind: str, adapter: str, options: Mapping[str, Any]) -> None:
        self.kind = kind
        self.adapter = adapter
        self._left = dict(options)
        self._known: list[str] = []

    def error(self, option: str, reason: str) -> AdapterConfigError:
        """The error for a bad ``option``."""
        return AdapterConfigError(self.adapter, option, reason)

    def _take(self, key: str) -> Any:
        self._known.append(key)
        return self._left.pop(key, None)

    def string(self, key: str, *, example: str) -> str:
        """A required, non-empty string."""
        value = self._take(key)
        if value is None:
            raise self.error(key, f"is required (e.g. {key} = {example!r})")
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string (e.g. {key} = {example!r})")
        return value

    def optional_string(self, key: str) -> str | None:
        """A string, or ``None`` when absent."""
        value = self._take(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise self.error(key, "must be a non-empty string")
        return value

    def integer(self, key: str, default: int, *, minimum: int = 1) -> int:
        """An integer of at least ``minimum``."""
        value = self._take(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"must be an integer of at least {minimum}, not {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        """``true`` or ``false``."""
        value = self._take(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def duration(self, key: str, default: str, *, allow_zero: bool = False) -> timedelta:
        """A duration (``"90s"``, ``"5m"``) or a number of seconds; positive (or zero)."""
        value = self._take(key)
        try:
            duration = parse_duration(default if value is None else value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from exc
        if duration < timedelta(0) or (duration == timedelta(0) and not allow_zero):
            raise self.error(key, f"must be positive, not {value!r}")
        return duration

    def strings(self, key: str) -> tuple[str, ...]:
        """A list of non-empty strings (empty when absent)."""
        value = self._take(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, f'must be a list of names (e.g. {key} = ["id", "amount"])')
        return tuple(value)

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        """One of ``choices``."""
        value = self._take(key)
        if value is None:
            return default
        if value not in choices:
            raise self.error(key, f"must be one of {', '.join(map(repr, choices))}, not {value!r}")
        return str(value)

    def finish(self) -> None:
        """Refuse any option that was not read: it is misspelt or belongs to another kind."""
        if self._left:
            key = sorted(self._left)[0]
            raise self.error(
                key,
                f"is not an option of {self.kind!r} (options: {', '.join(sorted(self._known))})",
            )
