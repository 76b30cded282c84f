"""The one rule for the names people give things: queues, deployments, channels, API keys.

A name is 1 to 128 characters: letters, digits, ``.``, ``_`` and ``-``, starting with a
letter or a digit (``nightly-sales``, ``warehouse.load_2``). It is the rule rule names
follow (``interlock.rules.validation``), so every name can sit in a URL path
(``/api/deployments/{name}``), a table column (``VARCHAR(200)``) and a shell argument
unquoted.

:data:`NAME_PATTERN` is the rule as a regular expression (the API's OpenAPI schema
shows it); :func:`check_name` refuses a name that breaks it, saying what is allowed.
"""

from __future__ import annotations

import re
from typing import Final

from interlock.service.store.errors import InvalidRecord

__all__ = ["MAX_NAME_LENGTH", "NAME_HELP", "NAME_PATTERN", "check_name"]

MAX_NAME_LENGTH: Final = 128
"""Longest name, in characters."""
NAME_PATTERN: Final = rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME_LENGTH - 1}}}$"
"""A name, as a regular expression (anchored)."""
NAME_HELP: Final = (
    f"letters, digits, '.', '_' and '-', starting with a letter or digit, "
    f"at most {MAX_NAME_LENGTH} characters (e.g. 'nightly-sales')"
)
"""What a name may be, in words."""

_NAME = re.compile(NAME_PATTERN)


def check_name(kind: str, name: object) -> str:
    """Return ``name`` if it follows the rule.

    Raises:
        InvalidRecord: it does not (too long, empty, or a character outside the rule).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = name if not isinstance(name, str) or len(name) <= 40 else f"{name[:40]}..."
        raise InvalidRecord(kind, shown, "name", f"must be {NAME_HELP}")
    return name
