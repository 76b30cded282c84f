"""Rules for scenarios from rule modules, as ``interlock rules check`` loads them."""

from __future__ import annotations

from pathlib import Path

from interlock.rules.loader import load_paths
from interlock.rules.rule import Rule
from interlock.rules.testing.errors import ScenarioError

__all__ = ["rules_in", "select_rules"]


def rules_in(*paths: str | Path) -> list[Rule]:
    """The rules of the modules at ``paths`` (files or folders).

    Raises:
        ScenarioError: a module does not load or a rule in it is invalid (every problem,
            each with its file and line).
    """
    result = load_paths([Path(path) for path in paths])
    if result.problems:
        listed = "\n".join(f"  {problem}" for problem in result.problems)
        raise ScenarioError(f"the rules do not load:\n{listed}")
    return result.rules


def select_rules(rules: list[Rule], names: list[str]) -> list[Rule]:
    """The rules named ``names``, in that order.

    Raises:
        ScenarioError: a name is not among ``rules`` (the message lists those that are).
    """
    by_name = {rule.name: rule for rule in rules}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ScenarioError(
            f"no rule named {', '.join(map(repr, unknown))} "
            f"(the rules are: {', '.join(sorted(by_name)) or 'none'})"
        )
    return [by_name[name] for name in names]
