"""interlock.rules.testing: scenarios run rules through the engine as the pipeline feeds it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from interlock.rules import (
    Rule,
    absent,
    deadline,
    heartbeat,
    notify,
    on,
    resource,
    run_deployment,
    workdays,
)
from interlock.rules.testing import (
    Scenario,
    ScenarioError,
    ScenarioFailed,
    fired,
    resolved,
    rules_in,
)
from interlock.rules.testing.pipeline import SimulatedPipeline
from interlock.rules.testing.times import TimeValueError, parse_time, zone_named

BERLIN = "Europe/Berlin"


def sales_rule(parameters: str = "{{ window.deadline.date() }}") -> Rule:
    return Rule(
        name="sales-by-0900",
        when=absent(
            "db.table.updated",
            where=resource.id == "warehouse.sales",
            by=deadline("09:00", tz=BERLIN, days=workdays(), start="start_of_day"),
        ),
        then=[run_deployment("backfill", parameters={"date": parameters})],
        on_resolved=[notify("team", title="arrived {{ event.occurred }}")],
    )


def updated(scenario: Scenario, at: str) -> None:
    scenario.event("db.table.updated", resource="warehouse.sales", at=at)


def test_a_scenario_that_holds_passes() -> None:
    with Scenario([sales_rule()], tz=BERLIN, start="2026-03-26 00:00") as scenario:
        updated(scenario, "2026-03-26 08:15")
        assert scenario.advance_to("2026-03-26 12:00") == []
        scenario.expect()
        scenario.advance_to("2026-03-27 12:00")
        scenario.expect(
            fired("sales-by-0900", window=("2026-03-27", "2026-03-27 09:00"), expected=1, arrived=0)
        )
        updated(scenario, "2026-03-27 13:00")
        scenario.advance_to("2026-03-27 14:00")
        scenario.expect(resolved("sales-by-0900", at="2026-03-27 13:00"))


def test_a_firing_not_expected_fails_with_a_diff() -> None:
    scenario = Scenario([sales_rule()], tz=BERLIN, start="2026-03-26 00:00", name="friday")
    scenario.advance_to("2026-03-27 12:00")
    with pytest.raises(ScenarioFailed) as failed:
        scenario.expect(fired("sales-by-0900", window=("2026-03-27", "2026-03-27 09:00")))
    message = str(failed.value)
    assert message.splitlines()[0] == "scenario 'friday':"
    assert "- expected but did not happen, + happened but not expected" in message
    lines = [line.strip() for line in message.splitlines()]
    assert (
        "+ fired     sales-by-0900  window 2026-03-26 00:00 CET → 2026-03-26 09:00 CET  "
        "expected 1, arrived 0" in lines
    )
    assert (
        "= fired     sales-by-0900  window 2026-03-27 00:00 CET → 2026-03-27 09:00 CET  "
        "expected 1, arrived 0" in lines
    )


def test_an_expected_firing_that_differs_says_in_which_field() -> None:
    scenario = Scenario([sales_rule()], tz=BERLIN, start="2026-03-27 00:00")
    scenario.advance_to("2026-03-27 12:00")
    with pytest.raises(ScenarioFailed) as failed:
        scenario.expect(fired("sales-by-0900", window=("2026-03-27", "2026-03-27 10:00")))
    lines = [line.strip() for line in str(failed.value).splitlines()]
    assert lines[2].startswith(
        "- fired     sales-by-0900  window 2026-03-27 00:00 CET → 2026-03-27 10:00"
    )
    assert lines[3].startswith(
        "+ fired     sales-by-0900  window 2026-03-27 00:00 CET → 2026-03-27 09:00"
    )
    assert lines[4] == (
        "differs from the expected one above in window: expected 2026-03-27 00:00 CET → "
        "2026-03-27 10:00 CET, got 2026-03-27 00:00 CET → 2026-03-27 09:00 CET"
    )


def test_an_expected_firing_that_did_not_happen_fails() -> None:
    scenario = Scenario([sales_rule()], tz=BERLIN, start="2026-03-26 00:00")
    updated(scenario, "2026-03-26 08:00")
    scenario.advance_to("2026-03-26 12:00")
    with pytest.raises(ScenarioFailed, match="- fired     sales-by-0900  key 'x'"):
        scenario.expect(fired("sales-by-0900", key="x"))


def test_leaving_the_scenario_checks_what_is_left_unexpected() -> None:
    with (
        pytest.raises(ScenarioFailed, match=r"\+ fired     sales-by-0900"),
        Scenario([sales_rule()], tz=BERLIN, start="2026-03-26 00:00") as scenario,
    ):
        scenario.advance_to("2026-03-26 12:00")


def test_a_template_error_in_an_expected_firing_fails_the_scenario() -> None:
    broken = sales_rule(parameters="{{ event.occurred.date() }}")  # no event for an absence
    scenario = Scenario([broken], tz=BERLIN, start="2026-03-26 00:00")
    scenario.advance_to("2026-03-26 12:00")
    with pytest.raises(ScenarioFailed) as failed:
        scenario.expect(fired("sales-by-0900"))
    message = str(failed.value)
    assert "does not render" in message
    assert "action 0 (run_deployment) field 'parameters': 'None' has no attribute" in message
    # The same firing with a template that renders passes.
    good = Scenario([sales_rule()], tz=BERLIN, start="2026-03-26 00:00")
    good.advance_to("2026-03-26 12:00")
    good.expect(fired("sales-by-0900"))


def test_a_resolution_renders_over_the_event_that_resolved_it() -> None:
    rule = Rule(
        name="r",
        when=absent("db.table.updated", by=deadline("09:00", tz=BERLIN)),
        then=[notify("team")],
        on_resolved=[notify("team", title="{{ event.payload.rows + 1 }}")],
    )
    scenario = Scenario([rule], tz=BERLIN, start="2026-03-26 00:00")
    scenario.event("db.table.updated", resource="t", at="2026-03-26 10:00", payload={"rows": "x"})
    scenario.advance_to("2026-03-26 12:00")
    with pytest.raises(ScenarioFailed, match=r"action 0 \(notify\) field 'title'"):
        scenario.expect(fired("r"), resolved("r"))


def test_dst_the_deadline_follows_local_time() -> None:
    """09:00 Berlin is 08:00 UTC on Friday 27 March 2026 and 07:00 UTC on Monday 30 March."""
    scenario = Scenario([sales_rule()], tz=BERLIN, start="2026-03-27 00:00")
    scenario.event("db.table.updated", resource="warehouse.sales", at="2026-03-27T07:30Z")
    scenario.event("db.table.updated", resource="warehouse.sales", at="2026-03-30T07:30Z")
    scenario.advance_to("2026-03-30 12:00")
    scenario.expect(
        fired(
            "sales-by-0900",
            window=("2026-03-29T22:00Z", "2026-03-30T07:00Z"),
            at="2026-03-30 09:00",
        ),
        resolved("sales-by-0900", at="2026-03-30 09:30 Europe/Berlin"),
    )
    assert [firing.late for firing in scenario.firings] == [False, False]


def test_a_backlog_delays_the_judgement_and_marks_it_late() -> None:
    scenario = Scenario([sales_rule()], tz=BERLIN, start="2026-03-26 00:00", lag="20m")
    # Stored at 08:50, fed at 09:10: it counts; the deadline is judged at 09:20.
    updated(scenario, "2026-03-26 08:50")
    scenario.advance_to("2026-03-27 12:00")
    [missed] = scenario.firings
    assert missed.late
    assert missed.window_end == datetime(2026, 3, 27, 8, 0, tzinfo=UTC)
    scenario.expect(fired("sales-by-0900", window=("2026-03-27", "2026-03-27 09:00"), late=True))
    # The same miss without a backlog is not late, and an expectation of late fails.
    caught_up = Scenario([sales_rule()], tz=BERLIN, start="2026-03-27 00:00")
    caught_up.advance_to("2026-03-27 12:00")
    with pytest.raises(ScenarioFailed, match="late: expected true, got false"):
        caught_up.expect(fired("sales-by-0900", late=True))


def test_the_watermark_follows_the_pipelines_rule() -> None:
    """A backlog holds the watermark back (the position never goes back); then it catches up."""
    rule = Rule(name="any", when=on("job.done"), then=[notify("team")])
    scenario = Scenario([rule], start="2026-06-01 00:00")
    pipeline: SimulatedPipeline = scenario.pipeline
    first = datetime(2026, 6, 1, 0, 10, tzinfo=UTC)
    for second in range(300):  # more than a batch (256)
        scenario.event("job.done", resource="j", at=first + timedelta(seconds=second))
    scenario.advance_to("2026-06-01 00:30", lag="1h")  # stalled at 00:00 until 01:00
    assert pipeline.position == scenario.engine.watermark == datetime(2026, 6, 1, tzinfo=UTC)
    assert (pipeline.waiting, scenario.firings) == (300, [])
    found = scenario.advance_to("2026-06-01 01:10:01", lag="1h")
    assert [firing.at for firing in found] == [first, first + timedelta(seconds=1)]
    assert scenario.engine.watermark == first + timedelta(seconds=1)
    assert pipeline.waiting == 298
    scenario.advance_to("2026-06-01 01:10:01")  # the backlog ends: all fed at once
    assert pipeline.waiting == 0
    assert scenario.engine.watermark == datetime(2026, 6, 1, 1, 10, 1, tzinfo=UTC)
    assert len(scenario.firings) == 300


def test_events_are_fed_in_stored_order_and_a_late_one_is_stored_now() -> None:
    rule = Rule(name="any", when=on("job.done", for_each="resource.id"), then=[notify("t")])
    scenario = Scenario([rule], start="2026-06-01 00:00")
    scenario.event("job.done", resource="b", at="2026-06-01 00:20")
    scenario.event("job.done", resource="a", at="2026-06-01 00:10")
    scenario.advance_to("2026-06-01 01:00")
    scenario.event("job.done", resource="c", at="2026-06-01 00:05")  # occurred before now
    scenario.advance_to("2026-06-01 01:00")
    assert [firing.key for firing in scenario.firings] == ["a", "b", "c"]
    scenario.expect(
        fired("any", "c", at="2026-06-01 00:05"),
        fired("any", "b", at="2026-06-01 00:20"),
        fired("any", "a", at="2026-06-01 00:10"),
    )


def test_firing_ids_are_the_same_on_every_run() -> None:
    def run() -> list[str]:
        scenario = Scenario([sales_rule()], tz=BERLIN, start="2026-03-26 00:00", name="same")
        updated(scenario, "2026-03-26 10:00")
        scenario.advance_to("2026-03-26 12:00")
        return [str(firing.id) for firing in scenario.firings]

    assert run() == run()
    assert len(run()) == 2


def test_local_times_that_do_not_exist_or_repeat_are_refused() -> None:
    zone = zone_named(BERLIN)
    with pytest.raises(TimeValueError, match="does not exist in Europe/Berlin"):
        parse_time("2026-03-29 02:30", zone)
    with pytest.raises(
        TimeValueError, match=r"happens twice .* 02:30\+02:00 or 2026-10-25 02:30\+01:00"
    ):
        parse_time("2026-10-25 02:30", zone)
    assert parse_time("2026-10-25 02:30+01:00", zone) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert parse_time("2026-03-27 08:15 America/New_York", zone) == datetime(
        2026, 3, 27, 12, 15, tzinfo=UTC
    )
    with pytest.raises(TimeValueError, match="is not a time zone"):
        zone_named("Europe/Nowhere")
    with pytest.raises(ScenarioError, match="start: '2026-03-29 02:30' does not exist"):
        Scenario([sales_rule()], tz=BERLIN, start="2026-03-29 02:30")


def test_mistakes_in_a_scenario_say_what_is_wrong() -> None:
    scenario = Scenario([sales_rule()], tz=BERLIN, start="2026-03-26 00:00")
    scenario.advance_to("2026-03-26 12:00")
    with pytest.raises(ScenarioError, match="before the scenario's time"):
        scenario.advance_to("2026-03-26 11:00")
    with pytest.raises(ScenarioError, match=r"event 'db table': .*character ' '"):
        scenario.event("db table", resource="x", at="2026-03-26 13:00")
    with pytest.raises(ScenarioError, match="lag: 'soon' is not a duration"):
        scenario.advance_to("2026-03-26 13:00", lag="soon")
    with pytest.raises(ScenarioError, match="no rule of the scenario: 'sales'"):
        scenario.expect(fired("sales"))
    with pytest.raises(ScenarioError, match=r"published: .* is before the scenario's time"):
        scenario.event("db.x", resource="x", at="2026-03-26 13:00", published="2026-03-26 11:00")


def test_rules_come_from_rule_modules() -> None:
    rules = rules_in("config/rules/sales.py")
    assert [rule.name for rule in rules] == ["sales-table-by-0900"]
    with pytest.raises(ScenarioError, match="no such file"):
        rules_in("config/rules/nope.py")


def test_catching_up_in_batches_does_not_fake_a_miss() -> None:
    """An event stored after a full batch still counts: that batch's watermark is its last."""
    rule = Rule(
        name="x-by-0015",
        when=absent("x.done", by=deadline("00:15", tz="UTC")),
        then=[notify("team")],
    )
    scenario = Scenario([rule], start="2026-06-01 00:00")
    first = datetime(2026, 6, 1, 0, 10, tzinfo=UTC)
    for second in range(256):  # one full batch of other traffic, stored by 00:14:15
        scenario.event("other.thing", resource="o", at=first + timedelta(seconds=second))
    # Occurred before the deadline, stored after it: within the backlog, it counts.
    scenario.event(
        "x.done", resource="x", at="2026-06-01 00:14:40", published="2026-06-01 00:15:30"
    )
    scenario.advance_to("2026-06-01 00:30", lag="1h")
    scenario.advance_to("2026-06-01 01:10")  # the backlog ends: fed in two batches
    scenario.expect()


def test_an_event_repeated_at_a_steady_pace() -> None:
    rule = Rule(
        name="beat",
        when=absent("worker.heartbeat", by=heartbeat("10m"), for_each="resource.id"),
        then=[notify("team", title="{{ key }} silent since {{ window.start }}")],
    )
    with Scenario([rule], tz=BERLIN, start="2026-03-29 00:00") as scenario:
        # Across the spring-forward gap: elapsed time, 01:55 CET then 03:04 CEST.
        beats = scenario.repeat(
            "worker.heartbeat", every="9m", at="2026-03-29 01:00", until="2026-03-29 03:30",
            resource="w1",
        )  # fmt: skip
        assert len(beats) == 11  # 01:00 .. 03:30 local is 90 minutes of elapsed time
        scenario.advance_to("2026-03-29 04:00")
        scenario.expect(fired("beat", "w1", window=("2026-03-29 03:30", "2026-03-29 03:40")))
    with pytest.raises(ScenarioError, match="every: must be longer than 0s"):
        scenario.repeat("x.y", every="0s", at="2026-03-29 05:00", until="2026-03-29 06:00",
                        resource="r")  # fmt: skip
    with pytest.raises(ScenarioError, match=r"until: .* is before at"):
        scenario.repeat("x.y", every="1m", at="2026-03-29 06:00", until="2026-03-29 05:00",
                        resource="r")  # fmt: skip
    with pytest.raises(ScenarioError, match="every: 1,296,001 events"):
        scenario.repeat("x.y", every="1s", at="2026-03-29 05:00", until="2026-04-13 05:00",
                        resource="r")  # fmt: skip
