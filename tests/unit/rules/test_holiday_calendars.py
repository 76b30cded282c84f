"""Countries' and regions' holiday calendars, and calendars round-tripped through storage.

Holidays come from the ``holidays`` package (real data, no stand-in): Berlin keeps
International Women's Day (8 March), Bavaria does not; the United States observe
Independence Day 2026 (a Saturday) on Friday 3 July.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

import msgspec
import pytest

from interlock.rules import Rule, absent, country, cron, deadline, workdays
from interlock.rules.calendar import AnySchedule, CronSchedule, DailySchedule
from interlock.rules.engine.engine import Engine
from interlock.rules.errors import RuleDefinitionError
from interlock.rules.rule import dump_rules, load_rules
from interlock.rules.windows import schedule_for
from interlock.sdk import Event

BERLIN = "Europe/Berlin"


def local_days(schedule: DailySchedule | CronSchedule, after: datetime, count: int) -> list[date]:
    zone = schedule._plan().zone
    return [d.astimezone(zone).date() for d in schedule.deadlines_after(after, count)]


def test_a_region_s_holidays_have_no_deadline() -> None:
    berlin = DailySchedule(
        at="09:00", tz=BERLIN, days=workdays(), holidays=[country("DE", subdiv="BE")]
    )
    bavaria = DailySchedule(
        at="09:00", tz=BERLIN, days=workdays(), holidays=[country("DE", subdiv="BY")]
    )
    start = datetime(2027, 3, 5, 12, tzinfo=UTC)  # Friday; Monday 8 March is Women's Day
    assert local_days(berlin, start, 2) == [date(2027, 3, 9), date(2027, 3, 10)]
    assert local_days(bavaria, start, 2) == [date(2027, 3, 8), date(2027, 3, 9)]
    # the whole country: 3 October (German Unity Day, a Sunday in 2027) and Christmas
    germany = DailySchedule(at="09:00", tz=BERLIN, holidays=[country("DE")])
    days = local_days(germany, datetime(2027, 12, 23, 12, tzinfo=UTC), 3)
    assert days == [date(2027, 12, 24), date(2027, 12, 27), date(2027, 12, 28)]


def test_observed_days_and_cron_schedules_follow_the_calendar() -> None:
    us = CronSchedule(expression="0 17 * * mon-fri", tz="America/New_York", holidays=country("US"))
    days = local_days(us, datetime(2026, 7, 1, 23, tzinfo=UTC), 3)
    assert days == [date(2026, 7, 2), date(2026, 7, 6), date(2026, 7, 7)]  # 3 July observed


def test_dates_and_calendars_mix_and_are_stored_in_order() -> None:
    schedule = DailySchedule(
        at="09:00",
        tz=BERLIN,
        days=workdays(),
        holidays=["2026-12-31", country("DE", subdiv="BE"), "2026-12-24"],
    )
    assert schedule.holidays == ("2026-12-24", "2026-12-31", country("DE", subdiv="BE"))
    assert schedule.describe() == (
        "09:00 Europe/Berlin on Mon\N{EN DASH}Fri, except DE-BE's holidays and 2 dates"
    )
    days = local_days(schedule, datetime(2026, 12, 22, 12, tzinfo=UTC), 4)
    assert days == [date(2026, 12, 23), date(2026, 12, 28), date(2026, 12, 29), date(2026, 12, 30)]
    assert (
        DailySchedule(at="09:00", holidays=["2026-12-24"]).describe().endswith("except 1 holiday")
    )


def test_categories_narrow_or_widen_a_country() -> None:
    catholic = country("DE", subdiv="BY", categories=["public", "catholic"])
    assert catholic.describe() == "DE-BY (public, catholic)"
    schedule = DailySchedule(at="09:00", tz=BERLIN, holidays=[catholic])
    # Assumption Day (15 August) is public only in Catholic municipalities of Bavaria
    assert date(2027, 8, 15) not in local_days(schedule, datetime(2027, 8, 13, tzinfo=UTC), 3)


@pytest.mark.parametrize(
    ("holidays", "message"),
    [
        ([country("XX")], "no holiday calendar for country 'XX'"),
        ([country("de")], "did you mean 'DE'?"),
        (
            [country("DE", subdiv="ZZ")],
            "country 'DE' has no subdivision 'ZZ' (its subdivisions: BB, BE",
        ),
        ([country("DE", categories=["nope"])], "holidays of 'DE': Category is not supported: nope"),
        (["24.12.2026"], "holiday '24.12.2026' is not a date (use 'YYYY-MM-DD'"),
    ],
)
def test_an_unknown_calendar_is_a_rule_problem_at_its_path(holidays: list, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        DailySchedule(at="09:00", holidays=holidays)
    with pytest.raises(RuleDefinitionError) as refused:
        Rule(name="sla", when=absent("t.up", by=deadline("09:00", holidays=holidays)))
    (issue,) = refused.value.issues
    assert (issue.path, message in issue.message) == ("when.window.holidays", True)
    document = json.loads(dump_rules([Rule(name="sla", when=absent("t.up", by=deadline("09:00")))]))
    document["rules"][0]["when"]["window"]["holidays"] = msgspec.to_builtins(holidays)
    with pytest.raises(RuleDefinitionError) as loaded:
        load_rules(json.dumps(document))
    assert [i.path for i in loaded.value.issues] == ["when.window.holidays"]


def test_the_dsl_says_what_holidays_takes() -> None:
    with pytest.raises(TypeError, match=r"deadline\(\): holidays takes dates"):
        deadline("09:00", holidays=20261225)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"cron\(\): holidays takes dates"):
        cron("0 9 * * *", holidays=[date(2026, 12, 25)])  # type: ignore[list-item]
    assert deadline("09:00", holidays=country("DE")).holidays == [country("DE")]


CALENDARS = [
    deadline(
        "09:00", tz=BERLIN, days=workdays(), holidays=[country("DE", subdiv="BE"), "2026-12-24"]
    ),
    deadline("02:30", tz=BERLIN),  # skipped on 29 March, once on 25 October
    cron("15 * * * *", tz=BERLIN, holidays=country("DE")),
    cron("0 9 * * 1-5", tz="America/New_York", holidays=[country("US", categories=["public"])]),
    deadline("00:30", tz="Australia/Lord_Howe", start="start_of_day"),  # a 30-minute DST shift
]


@pytest.mark.parametrize("window", CALENDARS, ids=lambda w: f"{w.at or w.cron} {w.tz}")
def test_calendars_round_trip_through_rules_and_schedules(window: object) -> None:
    rule = Rule(name="sla", when=absent("t.up", by=window))
    (again,) = load_rules(dump_rules([rule]))
    assert again == rule
    schedule = schedule_for(again.when.window)  # type: ignore[union-attr]
    stored = msgspec.json.decode(msgspec.json.encode(schedule), type=AnySchedule)
    assert stored == schedule
    for instant in (
        datetime(2026, 3, 28, tzinfo=UTC),
        datetime(2026, 10, 24, tzinfo=UTC),
        datetime(2026, 12, 22, tzinfo=UTC),
    ):
        expected = schedule_for(rule.when.window).deadlines_after(instant, 60)  # type: ignore[union-attr]
        assert stored.deadlines_after(instant, 60) == expected
        assert [schedule.window_for(d) for d in expected] == [
            stored.window_for(d) for d in expected
        ]


def test_the_engine_skips_holidays_and_keeps_doing_so_after_a_restart() -> None:
    """Fake time over Christmas in Berlin: deadlines on 23 and 28 December only; the state
    exported on the 24th and imported into a new engine goes on the same way."""
    window = deadline(
        "09:00", tz=BERLIN, days=workdays(), holidays=[country("DE", subdiv="BE"), "2026-12-24"]
    )
    rules = [Rule(name="sales-daily", when=absent("t.up", by=window))]
    start = datetime(2026, 12, 22, 12, tzinfo=UTC)
    engine = Engine(rules, now=start)
    fired = engine.advance(datetime(2026, 12, 24, 12, tzinfo=UTC))
    assert [f.window_end for f in fired] == [datetime(2026, 12, 23, 8, tzinfo=UTC)]

    restored = Engine(load_rules(dump_rules(rules)), now=datetime(2026, 12, 24, 12, tzinfo=UTC))
    assert restored.import_state(engine.export_state()) == ["sales-daily"]
    assert json.loads(engine.export_state()) == json.loads(restored.export_state())
    update = Event(
        event="t.up", resource={"id": "sales"}, occurred=datetime(2026, 12, 28, 7, tzinfo=UTC)
    )
    later = restored.feed(update)
    later += restored.advance(datetime(2026, 12, 30, 12, tzinfo=UTC))
    assert [(f.status, f.window_end) for f in later] == [
        ("resolved", datetime(2026, 12, 23, 8, tzinfo=UTC)),
        ("fired", datetime(2026, 12, 29, 8, tzinfo=UTC)),
        ("fired", datetime(2026, 12, 30, 8, tzinfo=UTC)),
    ]
    assert (later[1].at, later[1].late) == (datetime(2026, 12, 29, 8, tzinfo=UTC), True)
