"""The errors of scenarios, and how they relate.

::

    ValueError
     └── ScenarioError          a scenario cannot be run as written (a time, a zone, a lag)
          └── ScenarioFileError  ... and it is in a scenario file: the file, line and field
    AssertionError
     └── ScenarioFailed         it ran, and the firings are not the ones expected

:class:`ScenarioFailed` is an :class:`AssertionError`, so pytest reports it as a failed
assertion with its diff.
"""

from __future__ import annotations

__all__ = ["ScenarioError", "ScenarioFailed", "ScenarioFileError"]


class ScenarioError(ValueError):
    """A scenario cannot be run as written; the message says what and where."""


class ScenarioFileError(ScenarioError):
    """A scenario file cannot be read: ``file:line: field: message``."""

    def __init__(self, file: str, line: int | None, field: str, message: str) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.message = message
        self.others: list[ScenarioFileError] = []
        """The file's other problems, when it has several."""
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class ScenarioFailed(AssertionError):
    """The firings of a scenario are not the ones expected; the message has the diff."""
