"""JSON bodies only (issue 14, finding 6): 415 for text, XML and forms; 64 levels deep.

``POST /api/events`` keeps its three media types; the approval links' form keeps its
form; every other body is ``application/json``, UTF-8, nested at most 64 levels.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from harness.nats import nats_client, read_events
from interlock.service.api.app import create_app
from interlock.service.api.bodies import MAX_JSON_DEPTH

from .conftest import Rig, api_client
from .test_malformed_input import assert_problem

EVENT = {"event": "job.done", "resource": {"id": "job-1"}}
CLOUDEVENT = {"specversion": "1.0", "type": "job.done", "source": "ci", "id": "ce-1"}
WRONG = [
    ("text/plain", json.dumps({"name": "q"}).encode()),
    ("application/xml", b"<queue><name>q</name></queue>"),
    ("application/x-www-form-urlencoded", b"name=q"),
    ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="n"\r\n'),
    (None, json.dumps({"name": "q"}).encode()),
    ("application/json; charset=latin-1", json.dumps({"name": "q"}).encode()),
]


@pytest.fixture
async def api(rig: Rig) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(create_app(rig.services, key_cache_ttl=0)) as client:
        yield client


def nested(depth: int) -> dict[str, Any]:
    """A deployment whose body nests ``depth`` levels (the body object is level 1)."""
    parameters: dict[str, Any] = {}
    level = parameters
    for _ in range(depth - 2):  # body (1) > parameters (2) > a > a ...
        level["a"] = {}
        level = level["a"]
    level["n"] = 1
    return {
        "name": f"deep-{depth}",
        "target": {"type": "process", "command": ["true"]},
        "parameters": parameters,
    }


@pytest.mark.parametrize(
    "path",
    ["/api/events", "/api/rules", "/api/queues", "/api/deployments", "/api/channels", "/api/keys"],
)
async def test_bodies_that_are_not_json_are_415(
    rig: Rig, api: httpx.AsyncClient, path: str
) -> None:
    for media, body in WRONG:
        headers = {"Content-Type": media} if media else {}
        response = await api.post(path, content=body, headers=headers)
        problem = assert_problem(response, 415, "application/json")
        assert (
            "send the body as application/json" in problem["detail"] or "UTF-8" in problem["detail"]
        )
        assert "application/json" in response.headers["accept-post"]
    assert await rig.services.store.queues.list() == []


async def test_events_take_json_and_cloudevents(rig: Rig, api: httpx.AsyncClient) -> None:
    for media, body in [
        ("application/json", EVENT),
        ("application/json; charset=utf-8", [EVENT]),
        ("application/cloudevents+json", CLOUDEVENT),
        ("application/cloudevents-batch+json", [{**CLOUDEVENT, "id": "ce-2"}]),
    ]:
        response = await api.post(
            "/api/events", content=json.dumps(body), headers={"Content-Type": media}
        )
        assert response.status_code == 202, (media, response.text)
    async with nats_client(rig.nats_url) as client:
        stored = await read_events(client, 4)
    assert [e.event for e in stored] == ["job.done"] * 4
    refused = await api.post(
        "/api/events", content=json.dumps(EVENT), headers={"Content-Type": "text/plain"}
    )
    problem = assert_problem(refused, 415)
    assert "application/cloudevents+json" in problem["detail"]


async def test_a_request_without_a_body_needs_no_content_type(api: httpx.AsyncClient) -> None:
    await api.post("/api/queues", json={"name": "etl"})
    paused = await api.post("/api/queues/etl/pause", headers={"Content-Type": "text/plain"})
    assert paused.status_code == 200, paused.text


async def test_json_nests_at_most_64_levels(rig: Rig, api: httpx.AsyncClient) -> None:
    assert MAX_JSON_DEPTH == 64
    fits = await api.post("/api/deployments", json=nested(64))
    assert fits.status_code == 201, fits.text
    deeper = await api.post("/api/deployments", json=nested(65))
    assert_problem(deeper, 400, "deeper than 64 levels")
    # Brackets inside strings are text, not nesting.
    text = await api.post(
        "/api/deployments",
        json={"name": "text", "target": {"type": "process", "command": ["echo", "[" * 500]}},
    )
    assert text.status_code == 201, text.text
    assert [d.name for d in await rig.services.store.deployments.list()] == ["deep-64", "text"]
