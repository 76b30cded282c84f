"""Errors of rule definitions: every problem of a rule, collected, with where and how to fix.

::

    InterlockError
    └── RuleDefinitionError (ValueError)   one or more RuleIssue of one or more rules

A :class:`RuleIssue` names the rule, the path of the field inside it
(``trigger.within``, ``then[1].url``), what is wrong, and a hint. Validation collects
every issue of a rule instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from interlock.sdk.errors import InterlockError

__all__ = ["RuleDefinitionError", "RuleIssue"]


class RuleIssue(msgspec.Struct, frozen=True, kw_only=True):
    """One problem in one rule."""

    rule: str
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        where = f"{self.path}: " if self.path else ""
        return f"rule {self.rule!r}: {where}{self.message}{hint}"


class RuleDefinitionError(InterlockError, ValueError):
    """A rule (or several) is invalid; ``issues`` lists every problem found.

    Attributes:
        issues: Each problem, with the rule name, field path, message and hint.
    """

    def __init__(self, issues: Sequence[RuleIssue]) -> None:
        self.issues = list(issues)
        if len(self.issues) == 1:
            text = str(self.issues[0])
        else:
            text = f"{len(self.issues)} problems:\n" + "\n".join(
                f"  - {issue}" for issue in self.issues
            )
        super().__init__(text)
