"""The matching engine: which registered specs an event satisfies, decided by durable_rules.

- :mod:`.names` — :class:`NameIndex`, event-name patterns to keys (dict + token trie).
- :mod:`.matcher` — :class:`Matcher`, :class:`MatchSpec`, :class:`MatcherStats`.
- :mod:`.durable_compiler` — predicates into the conditions durable decides exactly.
- :mod:`.durable_rulesets` — durable rulesets within durable's measured limits.
"""

from interlock.rules.engine.matcher import Matcher, MatcherStats, MatchSpec
from interlock.rules.engine.names import NameIndex

__all__ = ["MatchSpec", "Matcher", "MatcherStats", "NameIndex"]
