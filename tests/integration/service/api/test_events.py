"""``POST /api/events``: what goes in arrives in JetStream; what is rejected publishes nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from harness.nats import nats_client, read_events
from interlock.sdk import EVENTS_STREAM
from interlock.sdk.event import Event

from .conftest import Rig, RigFactory


def event(index: int = 0, **fields: Any) -> dict[str, Any]:
    return {
        "event": "job.finished",
        "resource": {"id": f"job-{index}"},
        "payload": {"n": index},
        **fields,
    }


async def stream(rig: Rig, expected: int = 0) -> list[Event]:
    async with nats_client(rig.nats_url) as client:
        return await read_events(client, expected, timeout=5 if expected else 0.5)


async def test_one_event_is_stored_in_jetstream_with_source_api(rig: Rig) -> None:
    response = await rig.client.post("/api/events", json=event(1))
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1
    assert body["stored"] == 1
    assert body["spooled"] == 0
    (stored,) = await stream(rig, 1)
    assert str(stored.id) == body["ids"][0]
    assert stored.source == "api"
    assert stored.resource == {"id": "job-1"}
    assert stored.payload == {"n": 1}


async def test_a_batch_keeps_order_ids_and_given_sources(rig: Rig) -> None:
    given = str(uuid.uuid4())
    batch = [event(0, id=given), event(1, source="airflow"), event(2)]
    response = await rig.client.post("/api/events", json=batch)
    assert response.status_code == 202
    assert response.json()["accepted"] == 3
    assert response.json()["ids"][0] == given
    stored = await stream(rig, 3)
    assert [e.resource["id"] for e in stored] == ["job-0", "job-1", "job-2"]
    assert [e.source for e in stored] == ["api", "airflow", "api"]
    assert [str(e.id) for e in stored] == response.json()["ids"]
    metrics = (await rig.client.get("/metrics")).text
    assert "interlock_api_events_received_total 3.0" in metrics


async def test_cloudevents_one_and_batch(rig: Rig) -> None:
    cloud = {
        "specversion": "1.0",
        "id": "abc-1",
        "source": "urn:producer",
        "type": "file.landed",
        "subject": "s3://bucket/key.csv",
        "time": "2026-01-31T09:00:00Z",
        "data": {"size": 3},
    }
    one = await rig.client.post(
        "/api/events",
        content=json.dumps(cloud),
        headers={"content-type": "application/cloudevents+json"},
    )
    assert one.status_code == 202, one.text
    batch = await rig.client.post(
        "/api/events",
        content=json.dumps([{**cloud, "id": "abc-2"}, {**cloud, "id": "abc-3"}]),
        headers={"content-type": "application/cloudevents-batch+json"},
    )
    assert batch.status_code == 202, batch.text
    assert batch.json()["accepted"] == 2
    # structured CloudEvents are recognised by specversion in plain JSON too, mixed
    mixed = await rig.client.post("/api/events", json=[{**cloud, "id": "abc-4"}, event(9)])
    assert mixed.status_code == 202, mixed.text
    stored = await stream(rig, 5)
    assert [e.event for e in stored] == ["file.landed"] * 4 + ["job.finished"]
    assert stored[0].source == "urn:producer"
    assert stored[0].resource["id"] == "s3://bucket/key.csv"
    assert stored[0].payload["size"] == 3


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"{not json", "application/json", "not valid JSON"),
        (b"", "application/json", "the body is empty"),
        (b"[]", "application/json", "the batch is empty"),
        (b"42", "application/json", "must be a JSON object or array, not a number"),
        (b'"text"', "application/json", "not a string"),
        (b'{"event": "x.y"}', "application/json", "resource is required"),
        (b'{"event": 5, "resource": {"id": "a"}}', "application/json", "event must be str"),
        (
            b'{"event": "x.y", "resource": {"id": "a"}, "colour": "red"}',
            "application/json",
            "colour is not a field",
        ),
        (
            b'{"event": "x.y", "resource": {"id": "a"}, "occurred": "2026-01-01T00:00:00"}',
            "application/json",
            "occurred must carry a UTC offset",
        ),
        (
            b'{"event": "x.y", "resource": {"id": "a"}}',
            "application/cloudevents+json",
            "specversion is required",
        ),
        (
            b'{"specversion": "1.0", "id": "1", "source": "s", "type": "a.b"}',
            "application/cloudevents-batch+json",
            "takes a JSON array",
        ),
        (
            b'{"specversion": "1.0", "id": "1", "source": "s"}',
            "application/cloudevents+json",
            "type",
        ),
    ],
)
async def test_bad_input_is_400_with_the_exact_problem(
    rig: Rig, body: bytes, content_type: str, expected: str
) -> None:
    response = await rig.client.post(
        "/api/events", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 400, response.text
    assert expected in response.json()["detail"]
    assert response.json()["status_code"] == 400
    # nothing was published, and the next good request works
    assert await stream(rig) == []
    good = await rig.client.post("/api/events", json=event(1))
    assert good.status_code == 202
    assert len(await stream(rig, 1)) == 1


async def test_a_batch_with_one_bad_event_is_rejected_whole(rig: Rig) -> None:
    batch = [event(0), event(1), {"event": "job.finished", "resource": {"name": "x"}}, event(3)]
    response = await rig.client.post("/api/events", json=batch)
    assert response.status_code == 400
    body = response.json()
    assert body["index"] == 2
    assert body["field"] == "resource.id"
    assert body["detail"] == "event [2]: resource.id is required"
    assert await stream(rig) == []
    assert "interlock_api_events_received_total 0.0" in (await rig.client.get("/metrics")).text


async def test_wrong_type_deep_in_a_batch_names_index_and_field(rig: Rig) -> None:
    batch = [event(0), event(1, related=[{"id": "a", "role": 7}])]
    response = await rig.client.post("/api/events", json=batch)
    assert response.status_code == 400
    assert response.json()["index"] == 1
    assert "related" in response.json()["field"]
    assert await stream(rig) == []


async def test_oversized_body_is_413_and_publishes_nothing(make_rig: RigFactory) -> None:
    rig = await make_rig(max_body_size=4096)
    batch = [event(i, payload={"pad": "x" * 200}) for i in range(40)]
    response = await rig.client.post("/api/events", json=batch)
    assert response.status_code == 413
    assert "larger than the limit of 4,096 bytes" in response.json()["detail"]
    assert await stream(rig) == []
    small = await rig.client.post("/api/events", json=batch[:2])
    assert small.status_code == 202
    assert len(await stream(rig, 2)) == 2


async def test_an_event_over_the_wire_contract_limits_is_400(make_rig: RigFactory) -> None:
    """An event larger than any reader takes (the wire contract's limits, below NATS'
    max_payload) is refused whole, naming the event and the limit; nothing is published."""
    rig = await make_rig(max_body_size=4 * 1024 * 1024)
    huge = event(0, payload={"blob": "x" * (1024 * 1024 + 10)})
    response = await rig.client.post("/api/events", json=[event(1), huge])
    assert response.status_code == 400
    assert response.json()["index"] == 1
    assert "payload.blob is a string of 1,048,586 characters" in response.json()["detail"]
    assert await stream(rig) == []


async def test_what_only_the_encoded_event_shows_names_its_index_and_field(
    make_rig: RigFactory,
) -> None:
    """Limits checked on the encoded event (its size, a NUL character) answer 400 naming
    the event's position and field, as the decoder's errors do; nothing is published."""
    rig = await make_rig(max_body_size=4 * 1024 * 1024)
    quarter = "x" * 250_000  # each string within the limit, the event over 1,000,000 bytes
    large = event(2, payload=dict.fromkeys("abcd", quarter))
    response = await rig.client.post("/api/events", json=[event(0), event(1), large])
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["index"], body["field"]) == (2, "payload")
    assert body["detail"].startswith("event [2]: payload makes the event 1,000,")
    assert "at most 1,000,000 are allowed" in body["detail"]

    nul = event(1, payload={"text": "a\u0000b"})
    response = await rig.client.post("/api/events", json=[event(0), nul])
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["index"], body["field"]) == (1, "payload.text")
    assert body["detail"] == "event [1]: payload.text holds the NUL character (\\u0000)"

    alone = await rig.client.post("/api/events", json=nul)  # one event: no index
    assert alone.status_code == 400
    assert (alone.json()["index"], alone.json()["field"]) == (None, "payload.text")
    assert await stream(rig) == []


async def test_an_event_the_stream_refuses_is_422_and_the_others_go_on(rig: Rig) -> None:
    async with nats_client(rig.nats_url) as client:
        js = client.jetstream()
        config = (await js.stream_info(EVENTS_STREAM)).config
        config.max_msg_size = 600  # an operator's limit on the stream, below max_payload
        await js.update_stream(config)
    batch = [event(0), event(1, payload={"blob": "x" * 1000}), event(2)]
    response = await rig.client.post("/api/events", json=batch)
    assert response.status_code == 422, response.text
    body = response.json()
    assert "refused 1 of the 3 events for good" in body["detail"]
    assert "message size exceeds maximum allowed" in body["detail"]
    [refused] = body["refused"]
    assert refused["index"] == 1
    assert refused["reason"] == "message size exceeds maximum allowed"
    assert (body["stored"], body["spooled"]) == (2, 0)
    stored = await stream(rig, 2)
    assert [e.resource["id"] for e in stored] == ["job-0", "job-2"]
    assert refused["id"] not in {str(e.id) for e in stored}
    metrics = (await rig.client.get("/metrics")).text
    assert "interlock_api_events_received_total 2.0" in metrics


async def test_events_are_spooled_when_nats_is_down_and_the_answer_says_so(
    rig: Rig, nats_server: Any
) -> None:
    nats_server.stop()
    try:
        response = await rig.client.post("/api/events", json=[event(0), event(1)])
        assert response.status_code == 202
        assert response.json()["stored"] == 0
        assert response.json()["spooled"] == 2
    finally:
        nats_server.start()
    assert await rig.services.publisher.flush(timeout=30)
    stored = await stream(rig, 2)
    assert [e.resource["id"] for e in stored] == ["job-0", "job-1"]
