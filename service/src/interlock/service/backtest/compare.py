"""The difference between what rules would have fired and what their live versions fired.

Firing ids are UUID5s of the firing's identity (rule, key, window, status, causing
events), so the same rule over the same events makes the same ids, live or replayed.
Compared by id, over ``since <= at < until``, each firing is

- **the same**: fired live and by the backtest;
- **would newly fire**: only the backtest fires it;
- **would no longer fire**: only the live service fired it.

Differences are explained by the rule's live versions where they can be: the version
in force at the firing's time (the latest applied at or before it) either has another
trigger than the backtested rule (its fingerprint differs: a changed threshold, window,
filter), was applied after the replay started (its state began then, the backtest's
earlier), or did not exist yet. What none of these explains is left unexplained (a
pause, a restart's lost state, events that expired from the stream).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from interlock.rules.engine.engine import fingerprint
from interlock.rules.engine.firing import Firing
from interlock.rules.rule import Rule
from interlock.service.backtest.horizon import Horizon
from interlock.service.backtest.live import LiveRule

__all__ = ["Comparison", "compare"]


class Comparison(msgspec.Struct, frozen=True, kw_only=True):
    """How one rule's backtest differs from its live firings."""

    live_version: int
    paused: bool
    same: int
    newly: list[Firing]
    """Would newly fire: the backtest's firings the live service did not make."""
    no_longer: list[Firing]
    """Would no longer fire: live firings the backtest did not make."""
    explanations: list[str]

    @property
    def changed(self) -> bool:
        """Whether anything would change."""
        return bool(self.newly or self.no_longer)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _when(value: datetime) -> str:
    return _utc(value).astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def compare(
    rule: Rule,
    backtest: Sequence[Firing],
    live_firings: Sequence[Firing],
    live: LiveRule,
    horizon: Horizon,
) -> Comparison:
    """Compare one rule's backtest firings with its live ones, by firing id."""
    ours = {firing.id: firing for firing in backtest}
    theirs = {firing.id: firing for firing in live_firings}
    newly = [firing for firing in backtest if firing.id not in theirs]
    no_longer = sorted(
        (firing for firing in live_firings if firing.id not in ours), key=lambda f: f.at
    )
    same = sum(1 for firing_id in ours if firing_id in theirs)
    return Comparison(
        live_version=live.version,
        paused=live.paused,
        same=same,
        newly=newly,
        no_longer=no_longer,
        explanations=_explain(rule, [*newly, *no_longer], live, horizon),
    )


def _explain(rule: Rule, differing: list[Firing], live: LiveRule, horizon: Horizon) -> list[str]:
    if not differing:
        return []
    ours = fingerprint(rule)
    reasons: Counter[str] = Counter()
    for firing in differing:
        version = live.in_force(_utc(firing.at))
        if version is None:
            first = live.versions[0] if live.versions else None
            applied = f" (applied {_when(first.applied_at)})" if first else ""
            reasons[f"the rule was not live yet: its first version{applied} came later"] += 1
        elif version.fingerprint != ours:
            reasons[
                f"live ran version {version.version} (applied {_when(version.applied_at)}), "
                "whose trigger differs from the backtested rule"
            ] += 1
        elif _utc(version.applied_at) > horizon.start:
            reasons[
                f"live version {version.version} was applied at {_when(version.applied_at)}, "
                "after the replay's start: its state began then"
            ] += 1
        else:
            reasons[
                "not explained by the rule's versions (a pause, lost state, expired events?)"
            ] += 1
    lines = [f"{count} of {len(differing)}: {reason}" for reason, count in reasons.most_common()]
    if live.paused:
        lines.append(f"the rule is paused live now (version {live.version})")
    return lines
