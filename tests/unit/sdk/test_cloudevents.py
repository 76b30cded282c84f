"""CloudEvents 1.0 structured JSON to and from Event, with nothing dropped."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest

from interlock.sdk import (
    Event,
    EventValidationError,
    decode_event,
    from_cloudevent,
    to_cloudevent,
)


def test_mapping_of_the_core_attributes() -> None:
    document = {
        "specversion": "1.0",
        "id": "7d3c2f4e-1b8a-4c1e-9a57-2e3f4a5b6c7d",
        "source": "https://airflow.example/dags",
        "type": "airflow.dag_run.succeeded",
        "time": "2026-11-24T09:00:00+01:00",
        "subject": "airflow.sales_daily",
        "data": {"run_id": "r1", "rows": 10},
    }
    event = from_cloudevent(document)
    assert event.id == uuid.UUID(document["id"])
    assert event.event == "airflow.dag_run.succeeded"
    assert event.occurred == datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
    assert event.source == "https://airflow.example/dags"
    assert event.resource == {"id": "airflow.sales_daily"}
    assert event.payload == {"run_id": "r1", "rows": 10}


def test_event_to_cloudevent_and_back_is_equal() -> None:
    event = Event(
        event="s3.object.created",
        resource={"id": "s3://landing/a.csv", "bucket": "landing"},
        related=[{"id": "warehouse.raw", "role": "target"}],
        payload={"size": 12, "etag": "abc"},
        source="adapter.s3",
    )
    document = to_cloudevent(event)
    assert document["type"] == "s3.object.created"
    assert document["subject"] == "s3://landing/a.csv"
    assert document["data"] == {"size": 12, "etag": "abc"}
    assert from_cloudevent(json.loads(json.dumps(document))) == event


def test_unknown_extensions_are_kept_in_the_payload_and_restored() -> None:
    document = {
        "specversion": "1.0",
        "id": "order-17",
        "source": "shop",
        "type": "order.placed",
        "subject": "order/17",
        "time": "2026-11-24T08:00:00Z",
        "traceparent": "00-abc-def-01",
        "partitionkey": "eu",
        "dataschema": "https://schemas.example/order",
        "datacontenttype": "application/json",
        "data": {"total": 3},
    }
    event = from_cloudevent(document)
    kept = event.payload["cloudevents"]
    assert kept["extensions"] == {"traceparent": "00-abc-def-01", "partitionkey": "eu"}
    assert kept["dataschema"] == "https://schemas.example/order"
    assert kept["id"] == "order-17"
    assert event.payload["total"] == 3
    # A non-UUID id maps to a stable UUID: the same CloudEvent is the same event.
    assert from_cloudevent(document).id == event.id
    back = to_cloudevent(event)
    for key in ("id", "traceparent", "partitionkey", "dataschema", "type", "source", "subject"):
        assert back[key] == document[key]
    assert back["data"] == {"total": 3}


def test_non_object_data_is_kept() -> None:
    base = {"specversion": "1.0", "id": "1", "source": "s", "type": "t.x"}
    kept = {"cloudevents": {"id": "1"}}
    assert from_cloudevent(base | {"data": [1, 2]}).payload == {"data": [1, 2]} | kept
    assert from_cloudevent(base | {"data_base64": "AAE="}).payload == {"data_base64": "AAE="} | kept
    assert to_cloudevent(from_cloudevent(base | {"data": "hi"}))["data"] == "hi"


def test_subject_defaults_to_the_source() -> None:
    event = from_cloudevent({"specversion": "1.0", "id": "1", "source": "cron", "type": "job.ok"})
    assert event.resource == {"id": "cron"}


def test_decode_event_accepts_cloudevents() -> None:
    raw = json.dumps({"specversion": "1.0", "id": "1", "source": "s", "type": "t.x"})
    assert decode_event(raw).event == "t.x"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": None}, "type"),
        ({"type": "a..b"}, "type"),
        ({"source": ""}, "source"),
        ({"id": 5}, "id"),
        ({"specversion": "0.3"}, "specversion"),
        ({"time": "yesterday"}, "time"),
        ({"time": "2026-01-01T00:00:00"}, "time"),
    ],
)
def test_invalid_cloudevents_name_the_attribute(change: dict[str, object], field: str) -> None:
    document = {"specversion": "1.0", "id": "1", "source": "s", "type": "t.x"} | change
    with pytest.raises(EventValidationError) as caught:
        from_cloudevent(document)
    assert caught.value.field == field
