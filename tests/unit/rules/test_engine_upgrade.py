"""A checkpoint of the previous engine (state version 1) imports into this one.

``data/engine_state_v1.json`` was exported by the engine of commit 2dbb5ab (before the
trigger-state protocol) from one rule of each kind, after a few events and 95 minutes:
a calendar window with one of two events counted, a missed calendar window, an open
after-window, heartbeats missed, a threshold at two of three, a sequence at two of three
steps, a compound at one of two (the threshold's events had expired by then). Restored,
every rule goes on where it was: the rules' fingerprints are unchanged, nothing restarts
afresh, and the next events complete what the old engine had begun.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from interlock.rules.engine.engine import Engine
from interlock.rules.rule import load_rules
from interlock.sdk import Event

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
SAVED = json.loads((Path(__file__).parent / "data" / "engine_state_v1.json").read_text())


def ev(name: str, resource_id: str, minutes: float, n: int) -> Event:
    return Event(
        id=uuid.UUID(int=n),
        event=name,
        resource={"id": resource_id},
        occurred=T0 + timedelta(minutes=minutes),
        source="t",
    )


def restored() -> Engine:
    rules = load_rules(json.dumps(SAVED["rules"]))
    engine = Engine(rules, now=T0 + timedelta(minutes=95))
    names = engine.import_state(json.dumps(SAVED["state"]).encode())
    assert sorted(names) == sorted(rule.name for rule in rules)  # every one carried over
    return engine


def test_every_rule_carries_over_and_goes_on_where_it_was() -> None:
    engine = restored()
    # The old engine had already forgotten the threshold's two failures (more than its
    # hour behind its watermark): it comes over empty, which is all there was.
    at = 96
    firings = []
    for n, (name, resource_id) in enumerate(
        [
            ("tbl.updated", "a"),  # the second of two: the daily window is met for "a"
            ("etl.transform", "x"),  # the third step: fires
            ("b.done", "x"),  # the second part: fires
            ("job.finished", "x"),  # closes the after-window opened at 5 min
            ("hb.beat", "w1"),  # resolves w1's missed heartbeat
            ("tbl.other", "a"),  # resolves the missed 07:30 window
        ],
        start=100,
    ):
        event = ev(name, resource_id, at, n)
        firings += engine.feed(event) + engine.advance(event.occurred)
    assert sorted((f.rule, f.key, f.status) for f in firings) == [
        ("beat", "w1", "resolved"),
        ("both", "", "fired"),
        ("missed", "a", "resolved"),
        ("seq", "", "fired"),
    ]
    # 09:00 Berlin is 08:00 UTC: "a" got its two events; "b" got none and misses.
    deadline = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    judged = engine.advance(deadline + timedelta(minutes=1))
    assert [(f.key, f.status) for f in judged if f.rule == "daily"] == [("b", "fired")]
    # The after-window of job.started at 5 min was met at 96 min: nothing at 2 h 5 min.
    assert [f for f in engine.advance(T0 + timedelta(hours=3)) if f.rule == "finish"] == []


def test_the_export_is_version_2_and_reimports() -> None:
    engine = restored()
    exported = msgspec.json.decode(engine.export_state())
    assert exported["version"] == 2
    again = Engine(engine.rules, now=T0 + timedelta(minutes=95))
    assert sorted(again.import_state(engine.export_state())) == sorted(r.name for r in engine.rules)
