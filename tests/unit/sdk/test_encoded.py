"""Encoding a batch for publishing: the same bytes and checks as one event at a time.

:func:`encode_batch` is what :meth:`Publisher.publish_many` sends; it must give each
event's wire JSON exactly as :func:`encode_event` does, its subject and its id's
canonical text, and refuse what :func:`encode_event` refuses, naming the event's index.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from interlock.sdk import Event, EventValidationError, decode_event, encode_event
from interlock.sdk.encoded import encode_batch
from interlock.sdk.limits import MAX_PAYLOAD_DEPTH, MAX_STRING_LENGTH


def event(n: int, **fields: Any) -> Event:
    return Event(event="job.done", resource={"id": f"job-{n}"}, **{"payload": {"n": n}, **fields})


def nested(depth: int) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for _ in range(depth - 1):
        payload = {"a": payload}
    return payload


def test_each_event_is_encoded_as_encode_event_does_with_subject_and_canonical_id() -> None:
    upper = uuid.UUID("6F1D3E2A-4B5C-4D6E-8F90-123456789ABC")
    events = [
        event(0, source="s"),
        event(1, id=upper, source="s"),
        Event(event="a.b", resource={"id": "r"}, payload={"deep": [[{"x": "\\n"}]]}, source="s"),
    ]
    encoded = encode_batch(events)
    assert [item[1] for item in encoded] == [encode_event(e) for e in events]
    assert [item[0] for item in encoded] == [f"interlock.events.{e.event}" for e in events]
    assert [item[2] for item in encoded] == [str(e.id) for e in events]
    assert encoded[1][2] == "6f1d3e2a-4b5c-4d6e-8f90-123456789abc"
    assert [decode_event(item[1]) for item in encoded] == events


def test_events_without_source_get_the_one_given() -> None:
    encoded = encode_batch([event(0), event(1, source="own")], source="api")
    assert [decode_event(item[1]).source for item in encoded] == ["api", "own"]


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"t": "a\u0000b"}, "payload.t", "NUL character"),
        (nested(MAX_PAYLOAD_DEPTH + 1), "payload" + ".a" * MAX_PAYLOAD_DEPTH, "nests deeper"),
        ({"s": "x" * (MAX_STRING_LENGTH + 1)}, "payload.s", "is a string of"),
        (dict.fromkeys("abcd", "x" * 250000), "payload", "at most 1,000,000 are allowed"),
        ({"o": object()}, "payload", "not JSON-serializable"),
    ],
)
def test_an_event_breaking_a_limit_is_named_by_index_and_field(
    payload: dict[str, Any], field: str, message: str
) -> None:
    bad = Event(event="job.done", resource={"id": "x"}, payload=payload, source="s")
    with pytest.raises(EventValidationError) as caught:
        encode_batch([event(0, source="s"), event(1, source="s"), bad])
    assert (caught.value.index, caught.value.field) == (2, field)
    assert message in caught.value.reason
    assert str(caught.value).startswith(f"event [2]: {field} ")


def test_an_event_over_max_payload_is_refused_with_nats_limit() -> None:
    big = event(1, source="s", payload={"pad": "x" * 2_000})
    with pytest.raises(EventValidationError) as caught:
        encode_batch([event(0, source="s"), big], max_payload=1_024)
    assert (caught.value.index, caught.value.field) == (1, "payload")
    assert "the NATS server accepts at most 1,024 (max_payload)" in caught.value.reason
    assert len(encode_batch([big], max_payload=4_096)) == 1
