"""The runner owns its drain loop and failure count, and keeps to the loop policy."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from interlock.adapters.base import PollingAdapter, PollResult, SourceRefused, SourceUnavailable
from interlock.adapters.checkpoints import CheckpointStore
from interlock.adapters.runner import AdapterRunner
from interlock.sdk import Event, PublishResult


class MemoryCheckpoints:
    """A CheckpointStore in a dict (the protocol is all a runner needs)."""

    def __init__(self) -> None:
        self.saved: dict[str, dict[str, Any]] = {}

    def load(self, name: str) -> dict[str, Any] | None:
        return self.saved.get(name)

    def save(self, name: str, checkpoint: dict[str, Any]) -> None:
        self.saved[name] = checkpoint


class Publisher:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish_many(self, events: list[Event]) -> PublishResult:
        self.events.extend(events)
        return PublishResult(stored=len(events), spooled=0)


class Scripted(PollingAdapter):
    """Polls follow a script: a number of events (more after it?) or an exception."""

    kind = "test.scripted"

    def __init__(self, script: list[Any], stop: threading.Event | None = None) -> None:
        super().__init__("scripted")
        self.script = script
        self.stop = stop

    @classmethod
    def from_options(cls, name: str, options: dict[str, Any]) -> Scripted:
        return cls([])

    def poll(self, checkpoint: dict[str, Any] | None) -> PollResult:
        position = (checkpoint or {}).get("position", 0)
        if not self.script:
            if self.stop is not None:
                self.stop.set()
            return PollResult(events=[], checkpoint={"position": position})
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        count, more = step
        events = [
            Event(event="test.polled", resource={"id": f"r{position + n}"}) for n in range(count)
        ]
        return PollResult(events=events, checkpoint={"position": position + count}, more=more)


def runner(adapter: PollingAdapter, publisher: Publisher, store: CheckpointStore) -> AdapterRunner:
    return AdapterRunner(
        adapter,
        publisher,  # type: ignore[arg-type]
        store,
        interval=timedelta(milliseconds=1),
        max_backoff=timedelta(milliseconds=4),
    )


def test_drain_polls_until_the_source_has_nothing_more() -> None:
    store, publisher = MemoryCheckpoints(), Publisher()
    running = runner(Scripted([(2, True), (2, True), (1, False)]), publisher, store)
    assert running.drain() == 3
    assert (running.stats.polls, running.stats.events, running.stats.failures) == (3, 5, 0)
    assert store.saved == {"scripted": {"position": 5}}


def test_drain_counts_a_failed_poll_and_raises_it() -> None:
    running = runner(
        Scripted([(1, True), SourceUnavailable("scripted", "down")]),
        Publisher(),
        MemoryCheckpoints(),
    )
    with pytest.raises(SourceUnavailable):
        running.drain()
    assert (running.stats.polls, running.stats.failures) == (1, 1)


def test_run_forever_goes_on_after_an_unexpected_error_and_a_source_that_is_down() -> None:
    stop = threading.Event()
    script: list[Any] = [
        (1, False),
        ZeroDivisionError("a bug"),
        SourceUnavailable("scripted", "down"),
        (1, False),
    ]
    publisher = Publisher()
    running = runner(Scripted(script, stop), publisher, MemoryCheckpoints())
    running.run_forever(stop)  # the adapter sets stop once its script is done
    assert (running.stats.events, running.stats.failures) == (2, 2)
    assert [e.resource["id"] for e in publisher.events] == ["r0", "r1"]


def test_run_forever_stops_on_a_refusal() -> None:
    stop = threading.Event()
    running = runner(
        Scripted([SourceRefused("scripted", "no such bucket")]), Publisher(), MemoryCheckpoints()
    )
    with pytest.raises(SourceRefused):
        running.run_forever(stop)
    assert running.stats.failures == 1
