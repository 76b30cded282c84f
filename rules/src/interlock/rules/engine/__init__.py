"""The matching engine: rules' temporal state, and which specs an event satisfies.

This file re-exports the matcher's public names. The matcher's modules:

- :mod:`.names` — :class:`NameIndex`, event-name patterns to keys (dict + token trie).
- :mod:`.matcher` — :class:`Matcher`, :class:`MatchSpec`, :class:`MatcherStats`.
- :mod:`.durable_compiler` — predicates into the conditions durable decides exactly.
- :mod:`.durable_rulesets` — one durable ruleset: load it, post an event, drain its rules.
- :mod:`.durable_limits` — durable's structural limits and a replica to check them.
- :mod:`.durable_pool` — packing rules into rulesets; reloading them after changes.
"""

from interlock.rules.engine.matcher import Matcher, MatcherStats, MatchSpec
from interlock.rules.engine.names import NameIndex

__all__ = ["MatchSpec", "Matcher", "MatcherStats", "NameIndex"]
