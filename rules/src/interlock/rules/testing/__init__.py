"""Testing rules before they page anyone: scenarios of events in simulated time.

For pytest::

    from interlock.rules.testing import Scenario, fired, resolved, rules_in

    def test_sales_table_missed_on_monday() -> None:
        rules = rules_in("config/rules/sales.py")
        with Scenario(rules, tz="Europe/Berlin", start="2026-03-27 00:00") as scenario:
            scenario.advance_to("2026-03-30 12:00")
            scenario.expect(
                fired("sales-table-by-0900", window=("2026-03-27", "2026-03-27 09:00")),
                fired("sales-table-by-0900", window=("2026-03-30", "2026-03-30 09:00")),
            )

and as TOML files next to the rules, run by ``interlock rules test PATH``
(:mod:`.scenario_files`, :mod:`.runner`; the format is in ``docs/rules-testing.md``).

- :mod:`.scenario` — :class:`Scenario`: events, ``advance_to``, ``expect``.
- :mod:`.pipeline` — the live pipeline's feeding and watermark rule, simulated.
- :mod:`.expectations` — :class:`Expected`, :func:`fired`, :func:`resolved`.
- :mod:`.comparison`, :mod:`.diff` — matching firings and the readable diff.
- :mod:`.times` — local times in named zones, read exactly (DST gaps and repeats).
- :mod:`.errors` — :class:`ScenarioError`, :class:`ScenarioFileError`,
  :class:`ScenarioFailed`.
"""

from interlock.rules.testing.errors import ScenarioError, ScenarioFailed, ScenarioFileError
from interlock.rules.testing.expectations import Expected, TimeLike, fired, resolved
from interlock.rules.testing.rule_files import rules_in
from interlock.rules.testing.scenario import Scenario

__all__ = [
    "Expected",
    "Scenario",
    "ScenarioError",
    "ScenarioFailed",
    "ScenarioFileError",
    "TimeLike",
    "fired",
    "resolved",
    "rules_in",
]
