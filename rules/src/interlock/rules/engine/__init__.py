"""The engine: rules' temporal state, and which rules an event reaches.

- :mod:`.engine` — :class:`Engine`: feed events, advance time, get :class:`Firing` s;
  export and import its state.
- :mod:`.event_state`, :mod:`.absence_state`, :mod:`.compound_state`,
  :mod:`.sequence_state` — each trigger kind's explicit, serializable state.
- :mod:`.firing` — :class:`Firing` and deterministic firing ids.
- :mod:`.names` — :class:`NameIndex`, event-name patterns to keys (dict + token trie).
- :mod:`.matcher` — :class:`Matcher`, :class:`MatchSpec`, :class:`MatcherStats`.
- :mod:`.durable_compiler` — predicates into the conditions durable decides exactly.
- :mod:`.durable_rulesets` — one durable ruleset: load it, post an event, drain its rules.
- :mod:`.durable_limits` — durable's structural limits and a replica to check them.
- :mod:`.durable_pool` — packing rules into rulesets; reloading them after changes.
"""

from interlock.rules.engine.engine import Engine
from interlock.rules.engine.firing import Firing
from interlock.rules.engine.matcher import Matcher, MatcherStats, MatchSpec
from interlock.rules.engine.names import NameIndex

__all__ = ["Engine", "Firing", "MatchSpec", "Matcher", "MatcherStats", "NameIndex"]
