"""No malformed input gets a 500 (issue 14, finding 6), over a real store and NATS.

Each request here was answered 500 (or, for the empty queue name, 201) before the HTTP
boundary existed: invalid UTF-8 inside a JSON string, JSON nested 100,000 levels deep,
numbers that overflow a column, names no URL can hold, NUL characters PostgreSQL cannot
store, times that leave the calendar once in UTC. Each must now be a 4xx problem
document saying what is wrong, and change nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from interlock.service.api.app import create_app
from interlock.service.deployments.catalog import create_deployment
from interlock.service.deployments.runs import start_run

from .conftest import Rig, api_client

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
PROCESS = {"type": "process", "command": ["true"]}
NAME_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128"
BAD_NAMES = ["", "a b", "x" * 129, "a/b", "-lead", "caf\u00e9", "line\n"]


@pytest.fixture
async def api(rig: Rig) -> AsyncIterator[httpx.AsyncClient]:
    """Every controller (deployments, runs, queues, approvals too), in local mode."""
    async with api_client(create_app(rig.services, key_cache_ttl=0)) as client:
        yield client


def assert_problem(response: httpx.Response, status: int, *phrases: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert (body["type"], body["status"], body["status_code"]) == ("about:blank", status, status)
    text = json.dumps(body)
    for phrase in phrases:
        assert phrase in text, text
    return body


def post_json(api: httpx.AsyncClient, path: str, body: bytes) -> Any:
    return api.post(path, content=body, headers={"Content-Type": "application/json"})


async def test_invalid_utf8_in_an_event_string_is_400(rig: Rig, api: httpx.AsyncClient) -> None:
    body = b'{"event": "a.b", "resource": {"id": "x"}, "payload": {"text": "\xff\xfe"}}'
    for media in ("application/json", "application/cloudevents+json"):
        response = await api.post("/api/events", content=body, headers={"Content-Type": media})
        assert_problem(response, 400, "UTF-8")
    batch = b"[" + body + b"]"
    assert_problem(await post_json(api, "/api/events", batch), 400, "UTF-8")


@pytest.mark.parametrize("path", ["/api/rules", "/api/channels", "/api/keys", "/api/deployments"])
async def test_deeply_nested_json_is_400(api: httpx.AsyncClient, path: str) -> None:
    for body in (DEEP, DEEP_OBJECT):
        assert_problem(await post_json(api, path, body), 400, "deeper than 64 levels")


async def test_deeply_nested_events_are_400(api: httpx.AsyncClient) -> None:
    for body in (DEEP, DEEP_OBJECT):
        assert_problem(await post_json(api, "/api/events", body), 400)
    deep_payload = {"event": "a.b", "resource": {"id": "x"}, "payload": {}}
    level: dict[str, Any] = deep_payload["payload"]
    for _ in range(500):
        level["a"] = {}
        level = level["a"]
    response = await api.post("/api/events", json=[deep_payload])
    assert_problem(response, 400, "deeper than")


async def test_invalid_utf8_and_nul_in_other_bodies_are_400(
    rig: Rig, api: httpx.AsyncClient
) -> None:
    not_utf8 = b'{"name": "ops", "url": "json://localhost/\xff"}'
    assert_problem(await post_json(api, "/api/channels", not_utf8), 400, "not valid UTF-8")
    nul = {"name": "nul", "target": PROCESS, "description": "a\u0000b"}
    assert_problem(await api.post("/api/deployments", json=nul), 400, "NUL character")
    for path in ("/api/rules/a%00b", "/api/deployments/a%00b", "/api/runs?deployment=%00"):
        assert_problem(await api.get(path), 400, "NUL character (%00)")
    assert await rig.services.store.deployments.list() == []


async def test_a_queue_limit_of_ten_to_the_thirty_is_400(rig: Rig, api: httpx.AsyncClient) -> None:
    for limit in (10**30, 2**63, 2**31, 10_001, 0, -1):
        response = await api.post("/api/queues", json={"name": "etl", "concurrency_limit": limit})
        assert_problem(response, 400, "concurrency_limit")
    assert await rig.services.store.queues.list() == []
    created = await api.post("/api/queues", json={"name": "etl", "concurrency_limit": 10_000})
    assert created.status_code == 201, created.text


async def test_names_follow_one_rule(rig: Rig, api: httpx.AsyncClient) -> None:
    queue = await api.post(
        "/api/deployments", json={"name": "d", "target": PROCESS, "queue": "no queue"}
    )
    assert_problem(queue, 400, NAME_RULE)
    bodies = {
        "/api/queues": {},
        "/api/deployments": {"target": PROCESS},
        "/api/channels": {"url": "json://localhost/hook"},
        "/api/keys": {"scopes": ["read"]},  # last: a key ends local mode
    }
    for path, rest in bodies.items():
        for name in BAD_NAMES:
            response = await api.post(path, json={"name": name, **rest})
            assert_problem(response, 400, "name")
            if name and len(name) <= 128:  # a length message says so; the others the rule
                assert NAME_RULE in response.text, response.text
        fine = await api.post(path, json={"name": "warehouse.load_2-b", **rest})
        assert fine.status_code == 201, fine.text
    store = rig.services.store
    assert [q.name for q in await store.queues.list()] == ["default", "warehouse.load_2-b"]
    assert [d.name for d in await store.deployments.list()] == ["warehouse.load_2-b"]
    assert [c.name for c in await store.channels.list()] == ["warehouse.load_2-b"]
    assert [k.name for k in await store.api_keys.list()] == ["warehouse.load_2-b"]


async def test_numbers_and_strings_reaching_the_database_are_bounded(
    rig: Rig, api: httpx.AsyncClient
) -> None:
    await create_deployment(rig.services, "hello", target=PROCESS)
    run = await start_run(rig.services, "hello", parameters={}, reason="test")
    too_long = {"idempotency_key": "k" * 201}
    response = await api.post("/api/deployments/hello/run", json=too_long)
    assert_problem(response, 400, "idempotency_key", "length <= 200")
    schedule = {"name": "s", "target": PROCESS, "schedule": "0 " * 150}
    assert_problem(await api.post("/api/deployments", json=schedule), 400, "schedule")
    offset = await api.get(f"/api/runs/{run.id}/logs", params={"offset": 10**30})
    assert_problem(offset, 400, "offset")
    for since in ("2026-01-01T00:00:00", "0001-01-01T00:00:00+23:59"):
        firings = await api.get("/api/firings", params={"since": since})
        assert_problem(firings, 400, "since")
    until = await api.get("/api/firings", params={"until": "9999-12-31T23:59:59-23:59"})
    assert_problem(until, 400, "until is out of range")
    assert [r.id for r in await rig.services.store.runs.list()] == [run.id]


async def test_a_decision_by_a_name_longer_than_the_column_is_400(api: httpx.AsyncClient) -> None:
    firing = "6f1d3e2a-4b5c-4d6e-8f90-123456789abc"
    response = await api.post(f"/api/firings/{firing}/approve", json={"by": "x" * 201})
    assert_problem(response, 400, "by", "length <= 200")
    response = await api.post(f"/api/firings/{firing}/reject", json={"reason": "y" * 2001})
    assert_problem(response, 400, "reason", "length <= 2000")
