"""Actions are rendered over their firing when it is stored; failures are kept, not lost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from interlock.rules import Rule, absent, call, deadline, notify, on, webhook
from interlock.rules.engine.firing import Firing
from interlock.sdk import Event
from interlock.service.pipeline.rendering import RecentEvents, rendered_entries

AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def fired(rule: str, *events: Event) -> Firing:
    return Firing(
        id=uuid.uuid4(), rule=rule, key="etl.sales", status="fired", at=AT,
        event_ids=[event.id for event in events], summary="it happened",
    )  # fmt: skip


def test_templates_render_over_the_firing_and_its_events() -> None:
    event = Event(event="job.failed", resource={"id": "etl.sales"}, payload={"n": 3}, source="t")
    recent = RecentEvents()
    recent.add_all([event])
    rule = Rule(
        name="r",
        when=on("job.failed", for_each="resource.id"),
        then=[
            notify("ops", title="{{ key }}: {{ event.payload.n }}", body="{{ firing.summary }}"),
            webhook("http://h/{{ rule.name }}", body={"ids": "{{ events | length }}"}),
        ],
    )
    first, second = rendered_entries(fired("r", event), rule, recent)
    assert (first.kind, first.action["channel"]) == ("notify", "ops")
    assert (first.action["title"], first.action["body"]) == ("etl.sales: 3", "it happened")
    assert (second.action["url"], second.action["body"]) == ("http://h/r", {"ids": 1})


def test_a_lone_expression_in_a_json_field_keeps_its_type() -> None:
    payload = {"rows": 3, "ok": True, "none": None, "tables": ["a", "b"], "ratio": 0.5}
    event = Event(event="db.loaded", resource={"id": "dw.sales"}, payload=payload, source="t")
    recent = RecentEvents()
    recent.add_all([event])
    body = {
        "rows": "{{ event.payload.rows }}",
        "spaced": "  {{ event.payload.rows + 1 }} ",
        "ok": "{{ event.payload.ok }}",
        "none": "{{ event.payload.none }}",
        "tables": "{{ event.payload.tables }}",
        "ratio": "{{ event.payload.ratio }}",
        "payload": "{{ event.payload }}",
        "text": "rows: {{ event.payload.rows }}",
        "two": "{{ event.payload.rows }}{{ event.payload.rows }}",
        "when": "{{ event.occurred }}",  # a datetime has no JSON form: rendered as text
        "nested": [{"n": "{{ events | length }}"}],
    }
    rule = Rule(
        name="r",
        when=on("db.loaded"),
        then=[
            webhook("http://h/", body=body),
            notify("ops", title="{{ event.payload.rows }}", body="{{ event.payload.rows }}"),
        ],
    )
    hook, note = rendered_entries(fired("r", event), rule, recent)
    assert hook.action["body"] == {
        "rows": 3,
        "spaced": 4,
        "ok": True,
        "none": None,
        "tables": ["a", "b"],
        "ratio": 0.5,
        "payload": payload,
        "text": "rows: 3",
        "two": "33",
        "when": str(event.occurred),
        "nested": [{"n": 1}],
    }
    assert (note.action["title"], note.action["body"]) == ("3", "3")  # text fields stay text
    missing = Rule(
        name="m", when=on("db.loaded"), then=[webhook("http://h/", body="{{ event.payload.nope }}")]
    )
    [entry] = rendered_entries(fired("m", event), missing, recent)
    assert entry.action["render_error"].startswith("action 0 (webhook) field 'body': ")
    assert "has no attribute 'nope'" in entry.action["render_error"]


def test_a_template_that_fails_is_queued_with_its_error() -> None:
    rule = Rule(
        name="r", when=on("job.failed"), then=[notify("ops", title="{{ event.payload.x }}")]
    )
    [entry] = rendered_entries(fired("r"), rule, RecentEvents())
    assert entry.action["title"] == "{{ event.payload.x }}"
    assert entry.action["render_error"].startswith("action 0 (notify) field 'title'")


def test_a_call_goes_to_its_executor_with_its_params_rendered() -> None:
    rule = Rule(
        name="r",
        when=on("job.failed"),
        then=[call("airflow_trigger_dag", dag_id="backfill", conf={"table": "{{ key }}"})],
    )
    [entry] = rendered_entries(fired("r"), rule)
    assert entry.kind == "airflow_trigger_dag"
    assert entry.action == {
        "action": "call",
        "kind": "airflow_trigger_dag",
        "dag_id": "backfill",
        "conf": {"table": "etl.sales"},
    }


def test_the_window_is_in_the_calendars_zone_with_its_business_date() -> None:
    rule = Rule(
        name="night",
        when=absent("db.loaded", by=deadline("00:30", tz="Europe/Berlin")),
        then=[webhook("http://h/", body={"day": "{{ window.deadline.date() }}",
                                          "date": "{{ window.date }}",
                                          "utc": "{{ window.deadline_utc.date() }}"})],
    )  # fmt: skip
    # 00:30 in Berlin on the 25th is 23:30 UTC on the 24th.
    missed = Firing(
        id=uuid.uuid4(), rule="night", key="", status="fired",
        at=datetime(2026, 11, 24, 23, 30, tzinfo=UTC),
        window_start=datetime(2026, 11, 23, 23, 30, tzinfo=UTC),
        window_end=datetime(2026, 11, 24, 23, 30, tzinfo=UTC),
    )  # fmt: skip
    [entry] = rendered_entries(missed, rule, RecentEvents())
    assert entry.action["body"] == {"day": "2026-11-25", "date": "2026-11-25", "utc": "2026-11-24"}
    midnight = Rule(
        name="m", when=absent("db.loaded", by=deadline("00:00", tz="Europe/Berlin")),
        then=[webhook("http://h/", body={"date": "{{ window.date }}"})],
    )  # fmt: skip
    at_midnight = Firing(
        id=uuid.uuid4(), rule="m", key="", status="fired",
        at=datetime(2026, 11, 24, 23, 0, tzinfo=UTC),
        window_start=datetime(2026, 11, 23, 23, 0, tzinfo=UTC),
        window_end=datetime(2026, 11, 24, 23, 0, tzinfo=UTC),
    )  # fmt: skip
    [entry] = rendered_entries(at_midnight, midnight, RecentEvents())
    assert entry.action["body"] == {"date": "2026-11-24"}  # the day that just ended
