"""The wire contract's limits, and the decode path's one promise: only EventValidationError.

Whatever bytes arrive, :func:`decode_event` returns an event or raises
:class:`EventValidationError` naming what is wrong: never ``UnicodeDecodeError``,
``RecursionError`` or anything else that would escape a consumer's error handling.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock.sdk import Event, EventValidationError, decode_event, encode_event
from interlock.sdk.limits import (
    MAX_EVENT_BYTES,
    MAX_LABEL_KEY_LENGTH,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
    MAX_NAME_LENGTH,
    MAX_PAYLOAD_DEPTH,
    MAX_RELATED,
    MAX_SOURCE_LENGTH,
    MAX_STRING_LENGTH,
)

VALID: dict[str, Any] = {
    "id": "6f1d3e2a-4b5c-4d6e-8f90-123456789abc",
    "occurred": "2026-01-01T00:00:00Z",
    "event": "job.done",
    "resource": {"id": "x"},
    "payload": {"rows": 3},
    "source": "test",
}


def document(**changes: Any) -> bytes:
    return json.dumps({**VALID, **changes}).encode()


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def refused(data: bytes | str) -> EventValidationError:
    with pytest.raises(EventValidationError) as caught:
        decode_event(data)
    return caught.value


def test_invalid_utf8_inside_a_string_is_a_validation_error() -> None:
    raw = document(payload={"t": "XX"}).replace(b"XX", b"\xff\xfe")
    error = refused(raw)
    assert "UTF-8" in str(error)


@pytest.mark.parametrize("depth", [MAX_PAYLOAD_DEPTH + 1, 500, 100_000])
def test_a_payload_nested_past_the_limit_is_refused(depth: int) -> None:
    raw = b'{"a":' * depth + b"1" + b"}" * depth
    data = document(payload={}).replace(b'"payload": {}', b'"payload": ' + raw)
    error = refused(data)
    assert "nests deeper than 32 levels" in str(error)


def test_a_payload_at_the_depth_limit_decodes() -> None:
    event = decode_event(document(payload=nested(MAX_PAYLOAD_DEPTH - 1)))
    assert event.payload["a"]["a"]


def test_a_cloudevent_with_a_deeply_nested_extension_string_is_refused() -> None:
    cloudevent = {
        "specversion": "1.0",
        "id": "1",
        "source": "s",
        "type": "a.b",
        "interlocklabels": "[" * 100_000 + "]" * 100_000,
    }
    error = refused(json.dumps(cloudevent))
    assert error.field in ("", "interlocklabels")


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("time", 5),
        ("type", ["a.b"]),
        ("subject", {"id": "x"}),
        ("id", 7),
        ("specversion", "2.0"),
        ("interlocklabels", {"a": "b"}),
        ("interlockrelated", "[1]"),
        ("interlocklabels", '{"a": "\\ud800"}'),
        ("interlocklabels", '{"a": NaN}'),
    ],
)
def test_cloudevents_attributes_of_the_wrong_type_are_refused(attribute: str, value: Any) -> None:
    cloudevent = {"specversion": "1.0", "id": "1", "source": "s", "type": "a.b", attribute: value}
    refused(json.dumps(cloudevent))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"event": "a." * 130 + "b"}, "event"),
        ({"event": "x" * (MAX_NAME_LENGTH + 1)}, "event"),
        ({"source": "s" * (MAX_SOURCE_LENGTH + 1)}, "source"),
        ({"resource": {"id": "x", **{f"l{n}": "v" for n in range(MAX_LABELS)}}}, "resource"),
        ({"resource": {"id": "x", "k" * (MAX_LABEL_KEY_LENGTH + 1): "v"}}, "resource"),
        ({"resource": {"id": "x" * (MAX_LABEL_VALUE_LENGTH + 1)}}, "resource.id"),
        ({"related": [{"id": "r", "role": "input"}] * (MAX_RELATED + 1)}, "related"),
        ({"payload": {"text": "x" * (MAX_STRING_LENGTH + 1)}}, "payload.text"),
        ({"payload": {"k" * (MAX_STRING_LENGTH + 1): 1}}, "payload"),
        ({"payload": {"list": [nested(MAX_PAYLOAD_DEPTH)]}}, "payload.list[0]"),
    ],
)
def test_each_limit_names_its_field(changes: dict[str, Any], field: str) -> None:
    error = refused(document(**changes))
    assert error.field.startswith(field), error


def test_an_event_larger_than_the_limit_is_refused_before_it_is_parsed() -> None:
    big = document(payload={f"k{n}": "x" * 1000 for n in range(MAX_EVENT_BYTES // 1000 + 1)})
    assert "at most 1,000,000" in str(refused(big))


def test_encoding_refuses_what_decoding_would_refuse() -> None:
    deep = Event(event="a.b", resource={"id": "x"}, payload=nested(MAX_PAYLOAD_DEPTH + 1))
    with pytest.raises(EventValidationError, match="nests deeper"):
        encode_event(deep)
    long = Event(event="a.b", resource={"id": "x"}, payload={"t": "x" * (MAX_STRING_LENGTH + 1)})
    with pytest.raises(EventValidationError, match=r"payload\.t"):
        encode_event(long)
    with pytest.raises(EventValidationError, match="resource has 65 entries"):
        Event(event="a.b", resource={"id": "x", **{f"l{n}": "v" for n in range(64)}})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"payload": {"t": "a\u0000b"}}, "payload.t"),
        ({"payload": {"l": ["ok", {"k\u0000": 1}]}}, "payload.l[1]"),
        ({"resource": {"id": "x\u0000"}}, "resource.id"),
        ({"source": "s\u0000"}, "source"),
    ],
)
def test_the_nul_character_is_refused_anywhere(changes: dict[str, Any], field: str) -> None:
    error = refused(document(**changes))
    assert error.field == field
    assert "NUL" in error.reason
    with pytest.raises(EventValidationError, match="NUL"):
        encode_event(Event(event="a.b", resource={"id": "x"}, payload={"t": "\x00"}))


def test_a_backslash_before_u0000_is_not_a_nul() -> None:
    event = decode_event(document(payload={"t": "\\u0000"}))
    assert event.payload["t"] == "\\u0000"


def test_a_key_given_twice_counts_with_its_last_value() -> None:
    raw = document(event="job.first")[:-1] + b', "event": "job.last"}'
    assert decode_event(raw).event == "job.last"


def test_numbers_json_cannot_hold_are_refused_and_big_integers_are_exact() -> None:
    def with_number(text: bytes) -> bytes:
        return document(payload={}).replace(b'"payload": {}', b'"payload": {"x": ' + text + b"}")

    refused(with_number(b"NaN"))
    refused(with_number(b"1e400"))
    refused(with_number(b"9" * 5000))
    assert decode_event(with_number(b"9" * 400)).payload["x"] == int("9" * 400)


# -- the promise, fuzzed ----------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
fields = st.sampled_from([*VALID, "specversion", "type", "time", "subject", "data", "x"])


@st.composite
def mutated_documents(draw: st.DrawFn) -> bytes:
    """A valid event with fields replaced, removed or added, maybe bytes spliced in."""
    doc: dict[str, Any] = dict(VALID)
    if draw(st.booleans()):
        doc = {"specversion": "1.0", "id": "1", "source": "s", "type": "a.b", "data": {}}
    for _ in range(draw(st.integers(0, 3))):
        field = draw(fields)
        if draw(st.booleans()):
            doc[field] = draw(json_values)
        else:
            doc.pop(field, None)
    raw = msgspec.json.encode(doc)
    if draw(st.booleans()):
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    return raw


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_documents() | st.binary(max_size=200))
def test_decoding_raises_nothing_but_event_validation_errors(data: bytes) -> None:
    try:
        event = decode_event(data)
    except EventValidationError:
        return
    assert isinstance(event.id, uuid.UUID)
    assert encode_event(event)  # a decoded event encodes again
