"""Decoding ``POST /api/events`` bodies: the fast path and the careful path agree."""

from __future__ import annotations

import json
import uuid

import pytest

from interlock.sdk.codec import encode_event
from interlock.sdk.event import Event
from interlock.service.api.ingest import IngestError, decode_body


def test_fast_path_defaults_source_and_validates_once() -> None:
    body = json.dumps(
        [
            {"event": "a.b", "resource": {"id": "x"}},
            {"event": "a.b", "resource": {"id": "y"}, "source": "airflow"},
        ]
    ).encode()
    first, second = decode_body(body)
    assert (first.source, second.source) == ("api", "airflow")
    assert isinstance(first, Event)
    # what is published is a plain event's wire form
    assert json.loads(encode_event(first))["source"] == "api"


def test_an_explicitly_empty_source_becomes_api() -> None:
    (event,) = decode_body(b'{"event": "a.b", "resource": {"id": "x"}, "source": ""}')
    assert event.source == "api"


def test_single_object_and_ids_kept() -> None:
    given = uuid.uuid4()
    (event,) = decode_body(
        json.dumps({"id": str(given), "event": "a.b", "resource": {"id": "x"}}).encode()
    )
    assert event.id == given


@pytest.mark.parametrize(
    ("body", "index", "field", "message"),
    [
        (b'[{"event": "a.b", "resource": {"id": "x"}}, 7]', 1, "", "event [1]: must be"),
        (b'[{"event": "a.b", "resource": {}}]', 0, "resource.id", "event [0]: resource.id"),
        (b'{"event": "a.b", "resource": {}}', None, "resource.id", "resource.id is required"),
        (b"null", None, "", "not null"),
    ],
)
def test_errors_name_index_and_field(
    body: bytes, index: int | None, field: str, message: str
) -> None:
    with pytest.raises(IngestError) as caught:
        decode_body(body)
    assert caught.value.index == index
    assert caught.value.field == field
    assert message in str(caught.value)
