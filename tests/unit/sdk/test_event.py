"""The Event value object and its wire encoding: every field, every validation error."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from interlock.sdk import Event, EventValidationError, decode_event, decode_events, encode_event


def full_event() -> Event:
    return Event(
        id=uuid.UUID("0f9d6c55-3a77-4d43-9a8e-5c1c7d9c1e01"),
        occurred=datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2))),
        event="airflow.dag_run.succeeded",
        resource={"id": "airflow.sales_daily", "team": "finance", "env": "prod"},
        related=[
            {"id": "warehouse.sales", "role": "output"},
            {"id": "tag.daily", "role": "tag"},
        ],
        payload={
            "run_id": "scheduled__2026",
            "duration_s": 12.5,
            "tries": [1, 2],
            "ok": True,
            "nested": {"a": None},
        },
        source="adapter.airflow",
    )


def test_every_field_survives_encode_and_decode() -> None:
    event = full_event()
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert decoded.occurred.utcoffset() == timedelta(hours=2)


def test_wire_json_has_exactly_the_contract_fields() -> None:
    document = json.loads(encode_event(full_event()))
    assert list(document) == ["id", "occurred", "event", "resource", "related", "payload", "source"]
    assert document["id"] == "0f9d6c55-3a77-4d43-9a8e-5c1c7d9c1e01"
    assert document["occurred"] == "2026-03-29T01:30:15.123456+02:00"


def test_defaults_are_a_new_uuid_and_now_in_utc() -> None:
    before = datetime.now(timezone.utc)
    first = Event(event="a.b", resource={"id": "x"})
    second = Event(event="a.b", resource={"id": "x"})
    assert first.id != second.id
    assert first.id.version == 4
    assert first.occurred.tzinfo is timezone.utc
    assert before <= first.occurred <= datetime.now(timezone.utc)
    assert first.related == []
    assert first.payload == {}


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"resource": {}}, "resource.id", "is required"),
        ({"resource": {"id": ""}}, "resource.id", "is required"),
        ({"resource": {"id": "x", "n": 3}}, "resource.n", "must be a string, not int"),
        ({"event": "a..b"}, "event", "name 'a..b' has an empty token (token 2 of 3)"),
        ({"event": ""}, "event", "is required"),
        ({"event": "s3.object.*"}, "event", "character '*'"),
        ({"event": ".".join(["t"] * 17)}, "event", "17 tokens; at most 16"),
        ({"related": [{"id": "x"}]}, "related[0].role", "is required"),
        ({"related": [{"role": "input"}]}, "related[0].id", "is required"),
        ({"occurred": datetime(2026, 1, 1)}, "occurred", "must carry a UTC offset"),
        ({"payload": [1]}, "payload", "must be an object"),
    ],
)
def test_invalid_events_name_the_field(fields: dict[str, object], field: str, reason: str) -> None:
    arguments: dict[str, object] = {"event": "a.b", "resource": {"id": "x"}} | fields
    with pytest.raises(EventValidationError) as caught:
        Event(**arguments)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert str(caught.value).startswith(field)


BASE = {
    "id": "0f9d6c55-3a77-4d43-9a8e-5c1c7d9c1e01",
    "occurred": "2026-01-01T00:00:00Z",
    "event": "a.b",
    "resource": {"id": "x"},
    "source": "test",
}


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"resource": {"id": 5}}, "resource", "values must be str, not int"),
        ({"resource": {"label": "v"}}, "resource.id", "is required"),
        ({"occurred": "2026-01-01T00:00:00"}, "occurred", "must carry a UTC offset"),
        ({"id": "not-a-uuid"}, "id", "is not a valid UUID"),
        ({"event": "a..b"}, "event", "empty token"),
        ({"color": "red"}, "color", "is not a field of an Interlock event"),
        ({"related": [{"id": "a", "role": 1}]}, "related[0]", "values must be str, not int"),
        ({"source": ""}, "source", "is required"),
        ({"payload": "text"}, "payload", "must be object, not str"),
    ],
)
def test_decoding_invalid_wire_json_names_the_field(
    change: dict[str, object], field: str, reason: str
) -> None:
    document = BASE | change
    with pytest.raises(EventValidationError) as caught:
        decode_event(json.dumps(document))
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_missing_required_field_is_named() -> None:
    document = dict(BASE)
    del document["event"]
    with pytest.raises(EventValidationError) as caught:
        decode_event(json.dumps(document))
    assert (caught.value.field, caught.value.reason) == ("event", "is required")


def test_not_json_is_a_clear_error() -> None:
    with pytest.raises(EventValidationError, match="not valid JSON"):
        decode_event(b"{nope")


def test_batch_errors_carry_the_position() -> None:
    good = dict(BASE)
    bad = BASE | {"resource": {}}
    with pytest.raises(EventValidationError) as caught:
        decode_events(json.dumps([good, good, bad]))
    assert caught.value.field == "[2].resource.id"


def test_batch_mixes_native_and_cloudevents() -> None:
    cloud = {"specversion": "1.0", "id": "42", "source": "app", "type": "a.c", "subject": "r"}
    events = decode_events(json.dumps([BASE, cloud]))
    assert [event.event for event in events] == ["a.b", "a.c"]


def test_payload_that_is_not_json_serializable_is_refused_at_encode() -> None:
    event = Event(event="a.b", resource={"id": "x"}, payload={"when": object()}, source="t")
    with pytest.raises(EventValidationError) as caught:
        encode_event(event)
    assert caught.value.field == "payload"


def test_subject_follows_the_event_name() -> None:
    assert full_event().subject == "interlock.events.airflow.dag_run.succeeded"
