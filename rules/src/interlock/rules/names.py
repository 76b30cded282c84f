"""Event-name patterns: NATS-style wildcards over dotted event names.

``*`` stands for exactly one token, ``>`` (last token only) for one or more trailing
tokens: ``s3.object.*`` matches ``s3.object.created``; ``airflow.>`` matches
``airflow.dag_run.failed``; ``>`` matches every event.
"""

# ruff: noqa: S105 - "token" here is a part of a dotted name, not a secret

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["check_pattern", "pattern_matches"]

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def check_pattern(pattern: str) -> str | None:
    """Return why ``pattern`` is not a valid event-name pattern, or ``None``."""
    if not isinstance(pattern, str) or not pattern:
        return "an event-name pattern must be a non-empty string"
    return _check_pattern(pattern)


@lru_cache(maxsize=4096)  # 12,000 rules often name the same few events
def _check_pattern(pattern: str) -> str | None:
    tokens = pattern.split(".")
    if len(tokens) > 16:
        return f"{pattern!r} has {len(tokens)} tokens; event names have at most 16"
    for index, token in enumerate(tokens):
        if token == ">" and index != len(tokens) - 1:
            return f"{pattern!r}: '>' may only be the last token"
        if token in ("*", ">"):
            continue
        if not token:
            return f"{pattern!r} has an empty token"
        if not _TOKEN.fullmatch(token):
            return (
                f"{pattern!r}: token {token!r} may hold only letters, digits, '_' and '-' "
                "(wildcards are whole tokens: '*' or a final '>')"
            )
    return None


def pattern_matches(pattern: str, name: str) -> bool:
    """Return whether the event name ``name`` matches ``pattern``."""
    wanted = pattern.split(".")
    tokens = name.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(tokens) == len(wanted)


def matches_everything(pattern: str) -> bool:
    """Whether ``pattern`` matches every possible event name."""
    return pattern == ">"
