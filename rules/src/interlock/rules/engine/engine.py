"""The engine: rules in, events and time in, firings out.

It owns no clock and no thread: the caller feeds events (:meth:`Engine.feed`,
:meth:`Engine.feed_batch`) and moves time (:meth:`Engine.advance`) with the wall-clock
time and, when it knows it, the **watermark** — the event time up to which every event
has been fed (the consumer's position). Absences are judged on the watermark, so a
backlog delays the decision instead of producing a false "missing" alert.

Matching goes through :class:`~interlock.rules.engine.matcher.Matcher` (events reach only
rules whose event-name patterns match, and durable_rules decides the conditions); the
temporal logic — thresholds, windows, deadlines, sequences — is the trigger states'
explicit, serializable state (:meth:`export_state` / :meth:`import_state`).

Like durable_rules underneath it, an engine belongs to one thread.

**One rule cannot stop the others.** Validation refuses what the engine cannot run, but a
rule that fails anyway — its state cannot be built (a stored rule after an upgrade), its
evaluation raises on some event, its window cannot be judged — is marked **broken**: it
is unloaded from matching and judging, the reason is kept (:attr:`Engine.broken`) and
reported once (:meth:`Engine.take_broken`), and every other rule goes on; the event that
broke it still reaches them. Applying the rule again (a new version) rebuilds it.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from interlock.rules.collector import collector_paused
from interlock.rules.engine.context import Tick
from interlock.rules.engine.firing import Firing, key_of
from interlock.rules.engine.matcher import Matcher, MatchSpec
from interlock.rules.engine.trigger_state import (
    Occurrence,
    TriggerState,
    WindowView,
    state_for,
)
from interlock.rules.errors import RuleDefinitionError
from interlock.rules.rule import Rule, duplicate_name_issues
from interlock.rules.triggers import AbsenceTrigger
from interlock.sdk.event import Event

__all__ = ["STATE_VERSION", "Engine"]

logger = logging.getLogger(__name__)

STATE_VERSION = 2
"""Version 2: the trigger-state protocol (issue 15). Version 1 checkpoints still import."""
_SEPARATOR = "\x1f"
_PRUNE_EVERY = timedelta(minutes=1)


class _SavedRule(msgspec.Struct, kw_only=True):
    fingerprint: str
    state: msgspec.Raw


class _SavedEngine(msgspec.Struct, kw_only=True):
    version: int
    watermark: datetime
    rules: dict[str, _SavedRule]


def _encoded(state: TriggerState) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode(state.data))


def fingerprint(rule: Rule) -> str:
    """A digest of what a rule's state means: its trigger (not its actions or metadata).

    Fields added to triggers after a release are left out while they hold their default,
    so an upgrade keeps the state of the rules that do not use them.
    """
    encoded = msgspec.json.encode(rule.when, order="deterministic")
    if isinstance(rule.when, AbsenceTrigger) and rule.when.resolve == "first":
        # ``resolve`` (added in state version 2) is the struct's last field.
        assert encoded.endswith(_DEFAULT_RESOLVE)
        encoded = encoded[: -len(_DEFAULT_RESOLVE)] + b"}"
    return hashlib.sha256(encoded).hexdigest()[:16]


_DEFAULT_RESOLVE = b',"resolve":"first"}'


class _Loaded:
    """A rule with its state and the matcher specs registered for it.

    A broken rule keeps its definition and the reason; its state may be ``None`` (it could
    not be built) and nothing of it is registered.
    """

    def __init__(self, rule: Rule, state: TriggerState | None, broken: str | None = None) -> None:
        self.rule = rule
        self.state = state
        self.broken = broken
        self.for_each: list[str] = list(getattr(rule.when, "for_each", []))
        self.fingerprint = fingerprint(rule) if broken is None else ""
        self.matches = state.matches() if state is not None else []
        self.spec_ids = [f"{rule.name}{_SEPARATOR}{role}" for role in range(len(self.matches))]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Engine:
    """Evaluates rules over a stream of events and the passing of time.

    Args:
        rules: The rules to load.
        now: The current wall-clock time; also the initial watermark.
        lateness_tolerance: A firing decided more than this after it was due (a
            backlog, a restart) is marked ``late``.
        late_horizon: How far behind the watermark a late event is still expected.
            Expected events fed before the ``after`` event that would open their
            window are kept this long (plus ``within``) so that a late opening event
            still finds them; memory grows with it.
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        now: datetime,
        lateness_tolerance: timedelta = timedelta(seconds=30),
        late_horizon: timedelta = timedelta(days=1),
    ) -> None:
        self._tolerance = lateness_tolerance
        self._horizon = late_horizon
        self._now = now
        self._watermark = now
        self._last_prune = now
        self._loaded: dict[str, _Loaded] = {}
        self._matcher = Matcher()
        self._registered: set[str] = set()
        self._dues: list[tuple[datetime, int, str]] = []
        self._due_of: dict[str, datetime] = {}
        self._sequence = itertools.count()
        self._newly_broken: list[tuple[str, str]] = []
        self._prunable: set[str] = set()
        """Rules fed (or restored) since their state last said it keeps nothing old."""
        self.apply(rules)

    # -- rules ---------------------------------------------------------------------------

    @property
    def rules(self) -> list[Rule]:
        """The loaded rules, in load order."""
        return [loaded.rule for loaded in self._loaded.values()]

    @property
    def watermark(self) -> datetime:
        """Event time up to which windows have been judged."""
        return self._watermark

    def _tick(self) -> Tick:
        return Tick(
            now=self._now,
            watermark=self._watermark,
            tolerance=self._tolerance,
            horizon=self._horizon,
        )

    def apply(self, rules: Iterable[Rule]) -> None:
        """Load or replace each rule (by name); other loaded rules stay as they are.

        Raises:
            RuleDefinitionError: two of the rules share a name.
        """
        rules = list(rules)
        issues = duplicate_name_issues(rules)
        if issues:
            raise RuleDefinitionError(issues)
        with collector_paused():
            for rule in rules:
                self.put(rule)

    def put(self, rule: Rule) -> None:
        """Load ``rule``, replacing a loaded rule of the same name.

        The state of windows, counts and partial sequences is kept when the trigger is
        unchanged (only actions or metadata changed) and started afresh otherwise. A rule
        that cannot be built is loaded broken (see the module documentation).
        """
        previous = self._loaded.get(rule.name)
        if previous is not None and previous.broken is None:
            try:
                same = previous.fingerprint == fingerprint(rule)
            except Exception:  # noqa: BLE001 - built below, where the failure is recorded
                same = False
            if same:
                previous.rule = rule
                self._guarded(rule.name, "could not be loaded", self._register, previous)
                return
        if previous is not None:
            self.remove(rule.name)
        try:
            loaded = _Loaded(rule, self._new_state(rule))
        except Exception as exc:  # noqa: BLE001 - the per-rule boundary
            self._loaded[rule.name] = _Loaded(rule, None, broken="")  # _break sets why
            self._break(rule.name, f"cannot be built: {_describe(exc)}")
            return
        self._loaded[rule.name] = loaded
        self._guarded(rule.name, "could not be loaded", self._register, loaded)

    @property
    def broken(self) -> dict[str, str]:
        """The broken rules and why each is broken (built anew on each read)."""
        return {
            name: loaded.broken
            for name, loaded in self._loaded.items()
            if loaded.broken is not None
        }

    def broken_reason(self, name: str) -> str | None:
        """Why rule ``name`` is broken; ``None`` if it is not (or is not loaded).

        One rule's answer without building :attr:`broken` for every rule: what asking
        about each rule in turn needs.
        """
        loaded = self._loaded.get(name)
        return loaded.broken if loaded is not None else None

    def take_broken(self) -> list[tuple[str, str]]:
        """(rule, reason) for every rule that broke since the last call."""
        taken, self._newly_broken = self._newly_broken, []
        return taken

    def _break(self, name: str, reason: str) -> None:
        loaded = self._loaded.get(name)
        if loaded is None or loaded.broken:
            return
        loaded.broken = reason
        for spec_id in loaded.spec_ids:
            try:
                self._unregister(spec_id)
            except Exception:
                logger.exception("unregistering %s of broken rule %s failed", spec_id, name)
                self._registered.discard(spec_id)
        self._due_of.pop(name, None)
        self._newly_broken.append((name, reason))
        logger.error("rule %s is broken and no longer runs: %s", name, reason)

    def _guarded(self, name: str, doing: str, work: Any, *args: Any) -> Any:
        """``work(*args)``; an exception breaks rule ``name`` (and returns ``None``)."""
        try:
            return work(*args)
        except Exception as exc:  # noqa: BLE001 - the per-rule boundary
            self._break(name, f"{doing}: {_describe(exc)}")
            return None

    def remove(self, name: str) -> None:
        """Unload a rule and drop its state; unknown names are ignored."""
        loaded = self._loaded.pop(name, None)
        if loaded is not None:
            for spec_id in loaded.spec_ids:
                self._unregister(spec_id)
            self._due_of.pop(name, None)

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Enable or disable a loaded rule; a disabled rule matches and fires nothing.

        Re-enabling starts its windows afresh from the current watermark: periods that
        passed while it was disabled are not judged.
        """
        loaded = self._loaded[name]
        if loaded.rule.enabled == enabled:
            return
        rule = msgspec.structs.replace(loaded.rule, enabled=enabled)
        loaded.rule = rule
        if loaded.broken is not None:
            return
        if enabled:
            state = self._guarded(name, "could not be rebuilt", self._new_state, rule)
            if state is None:
                return
            loaded.state = state
        self._guarded(name, "could not be loaded", self._register, loaded)

    def _new_state(self, rule: Rule) -> TriggerState:
        return state_for(rule.name, rule.when, self._tick())

    def _register(self, loaded: _Loaded) -> None:
        for spec_id, match in zip(loaded.spec_ids, loaded.matches, strict=True):
            if not loaded.rule.enabled:
                self._unregister(spec_id)
                continue
            spec = MatchSpec(id=spec_id, names=tuple(match.names), where=match.where)
            if spec_id in self._registered:
                self._matcher.replace(spec)
            else:
                self._matcher.add(spec)
                self._registered.add(spec_id)
        self._schedule(loaded.rule.name)

    def _unregister(self, spec_id: str) -> None:
        if spec_id in self._registered:
            self._registered.discard(spec_id)
            self._matcher.remove(spec_id)

    def _schedule(self, name: str) -> None:
        loaded = self._loaded[name]
        if loaded.broken is not None or loaded.state is None:
            return
        due = loaded.state.next_due() if loaded.rule.enabled else None
        if due is None:
            self._due_of.pop(name, None)
            return
        if self._due_of.get(name) != due:
            self._due_of[name] = due
            heapq.heappush(self._dues, (due, next(self._sequence), name))

    def windows(self, name: str | None = None) -> Iterator[WindowView]:
        """The windows the rules watch now (``name``: one rule's), for the SLA board.

        Pending windows and unresolved misses; broken and disabled rules watch none.
        """
        loaded = [self._loaded[name]] if name is not None else list(self._loaded.values())
        for item in loaded:
            if item.state is not None and item.broken is None and item.rule.enabled:
                yield from item.state.windows()

    def due_of(self, name: str) -> datetime | None:
        """When the engine can next judge a window of rule ``name`` (event time), if ever."""
        return self._due_of.get(name)

    # -- events --------------------------------------------------------------------------

    def feed(self, event: Event) -> list[Firing]:
        """Evaluate one event; return the firings it causes, in order."""
        return self._dispatch(event, self._matcher.match(event))

    def feed_batch(self, events: Sequence[Event]) -> list[Firing]:
        """Evaluate events in order; return every firing they cause, in order."""
        try:
            matches = self._matcher.match_batch(events)
        except Exception:
            logger.exception("matching a batch of %d events failed; matching each", len(events))
            matches = [self._match(event) for event in events]
        firings: list[Firing] = []
        for event, spec_ids in zip(events, matches, strict=True):
            firings.extend(self._dispatch(event, spec_ids))
        return firings

    def _match(self, event: Event) -> list[str]:
        """The specs one event satisfies, even when matching it raises.

        On a failure the event is matched again spec by spec in Python: the rules whose
        conditions raise break, the others match.
        """
        try:
            return self._matcher.match(event)
        except Exception:
            logger.exception("matching event %s (%s) failed; isolating", event.id, event.event)
        try:
            spec_ids, failed = self._matcher.match_isolated(event)
        except Exception:
            logger.exception("event %s (%s) could not be matched at all", event.id, event.event)
            return []
        for spec_id, exc in failed.items():
            name = spec_id.partition(_SEPARATOR)[0]
            self._break(name, f"its condition failed on event {event.id}: {_describe(exc)}")
        return spec_ids

    def _dispatch(self, event: Event, spec_ids: list[str]) -> list[Firing]:
        if not spec_ids:
            return []
        roles: dict[str, list[int]] = {}
        for spec_id in spec_ids:
            name, _, role = spec_id.partition(_SEPARATOR)
            roles.setdefault(name, []).append(int(role))
        firings: list[Firing] = []
        tick = self._tick()
        for name, matched in roles.items():
            loaded = self._loaded.get(name)
            if loaded is None or not loaded.rule.enabled or loaded.broken is not None:
                continue
            state = loaded.state
            assert state is not None
            key = key_of(event, loaded.for_each)
            if key is None:
                continue
            occurrence = Occurrence(event.id, event.occurred, key, event.event, event.resource_id)
            try:
                firings.extend(state.on_event(tuple(sorted(matched)), occurrence, tick))
                self._prunable.add(name)
                self._schedule(name)
            except Exception as exc:  # noqa: BLE001 - the per-rule boundary
                reason = f"failed on event {event.id} ({event.event}): {_describe(exc)}"
                self._break(name, reason)
        return firings

    # -- time ----------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """The earliest event time at which a window can be judged, if any."""
        while self._dues:
            due, _, name = self._dues[0]
            if self._due_of.get(name) == due:
                return due
            heapq.heappop(self._dues)
        return None

    def advance(self, now: datetime, watermark: datetime | None = None) -> list[Firing]:
        """Move time: judge every window due by the watermark; return the firings.

        Args:
            now: Wall-clock time (decides which firings are late).
            watermark: Event time up to which every event has been fed; defaults to
                ``now`` (the consumer is caught up). It never moves backwards.
        """
        self._now = max(self._now, now)
        self._watermark = max(self._watermark, watermark if watermark is not None else now)
        tick = self._tick()
        firings: list[Firing] = []
        with collector_paused():
            self._judge_due(tick, firings)
        if self._watermark - self._last_prune >= _PRUNE_EVERY:
            self._last_prune = self._watermark
            for name in list(self._prunable):
                loaded = self._loaded.get(name)
                if loaded is None or loaded.broken is not None or loaded.state is None:
                    self._prunable.discard(name)
                    continue
                if not self._guarded(name, "pruning its state failed", loaded.state.prune, tick):
                    self._prunable.discard(name)
        return firings

    def _judge_due(self, tick: Tick, firings: list[Firing]) -> None:
        while (due := self.next_due()) is not None and due <= self._watermark:
            _, _, name = heapq.heappop(self._dues)
            self._due_of.pop(name, None)
            loaded = self._loaded[name]
            if loaded.broken is not None or loaded.state is None:
                continue
            try:
                judged = loaded.state.judge(tick)
                self._schedule(name)
            except Exception as exc:  # noqa: BLE001 - the per-rule boundary
                self._break(name, f"judging its windows failed: {_describe(exc)}")
                continue
            firings.extend(judged)

    # -- persistence ---------------------------------------------------------------------

    def export_state(self) -> bytes:
        """Serialize every rule's state and the watermark (JSON)."""
        rules: dict[str, _SavedRule] = {}
        for name, loaded in list(self._loaded.items()):
            if loaded.broken is not None or loaded.state is None:
                continue
            state = self._guarded(name, "exporting its state failed", _encoded, loaded.state)
            if state is not None:
                rules[name] = _SavedRule(fingerprint=loaded.fingerprint, state=state)
        saved = _SavedEngine(version=STATE_VERSION, watermark=self._watermark, rules=rules)
        return msgspec.json.encode(saved)

    def import_state(self, data: bytes) -> list[str]:
        """Restore exported state into the loaded rules; return the rules restored.

        A rule whose trigger changed since the export (or that is no longer loaded)
        starts afresh. The watermark goes back to the exported one, so the next
        :meth:`advance` judges every window that expired meanwhile, marked late.
        """
        with collector_paused():
            return self._import_state(data)

    def _import_state(self, data: bytes) -> list[str]:
        try:
            saved = msgspec.json.decode(data, type=_SavedEngine)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"the engine state cannot be read: {exc}") from exc
        if saved.version not in (1, STATE_VERSION):
            raise ValueError(f"engine state version {saved.version} is not 1 or {STATE_VERSION}")
        restored = []
        for name, item in saved.rules.items():
            loaded = self._loaded.get(name)
            if loaded is None or loaded.broken is not None or loaded.state is None:
                continue
            if loaded.fingerprint != item.fingerprint:
                continue
            try:
                loaded.state.restore(loaded.state.decode(item.state, saved.version))
                self._due_of.pop(name, None)
                self._schedule(name)
            except Exception:
                logger.exception("the saved state of rule %s cannot be restored; afresh", name)
                fresh = self._guarded(name, "could not be rebuilt", self._new_state, loaded.rule)
                if fresh is not None:
                    loaded.state = fresh
                    self._schedule(name)
                continue
            restored.append(name)
            self._prunable.add(name)
        self._watermark = saved.watermark
        self._last_prune = saved.watermark
        return restored
