"""Every error answer is an RFC 9457 problem document — Litestar's own errors included —
and the command line shows its ``detail`` as before."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from integration.service.actions.api_cli import cli, serving_api
from interlock.service.api.app import create_app
from interlock.service.api.rules import RULES_MAX_BODY_SIZE

from .conftest import Rig, RigFactory, api_client
from .test_malformed_input import assert_problem

JSON = {"content-type": "application/json"}
RULE_WITHOUT_TRIGGER = {"name": "no-trigger", "then": []}


@pytest.fixture
async def api(rig: Rig) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(create_app(rig.services, key_cache_ttl=0)) as client:
        yield client


async def test_litestar_errors_are_problem_documents(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/api/nothing-here"), 404, "Not Found")
    method = await api.put("/api/rules")
    assert_problem(method, 405)
    assert method.json()["title"] == "Method Not Allowed"
    validation = assert_problem(await api.get("/api/firings", params={"limit": 0}), 400)
    assert validation["extra"][0]["key"] == "limit"  # one entry per field, as before
    bad_uuid = await api.get("/api/runs/not-a-uuid")
    assert bad_uuid.status_code in (400, 404)
    assert bad_uuid.headers["content-type"] == "application/problem+json"


async def test_interlock_errors_are_problem_documents(api: httpx.AsyncClient) -> None:
    missing = assert_problem(await api.get(f"/api/firings/{uuid.uuid4()}"), 404, "no firing")
    assert missing["title"] == "Not Found"
    await api.post("/api/queues", json={"name": "etl"})
    assert_problem(await api.post("/api/queues", json={"name": "etl"}), 409, "exists already")
    rules = assert_problem(await api.post("/api/rules", json=RULE_WITHOUT_TRIGGER), 422)
    assert rules["problems"][0]["rule"] == "no-trigger"
    events = assert_problem(await api.post("/api/events", json=[{"event": "a.b"}]), 400)
    assert (events["index"], events["field"]) == (0, "resource")


async def test_guards_answer_problem_documents(rig: Rig, api: httpx.AsyncClient) -> None:
    reader = await rig.token("read")
    unauthorized = assert_problem(await api.get("/api/rules"), 401, "an API key is required")
    assert unauthorized["title"] == "Unauthorized"
    assert unauthorized.keys() >= {"type", "title", "status", "detail"}
    denied = await api.post(
        "/api/queues", json={"name": "q"}, headers={"Authorization": f"Bearer {reader}"}
    )
    assert_problem(denied, 403, "this needs write")


async def test_too_large_says_the_limit_and_how_to_split(make_rig: RigFactory) -> None:
    rig = await make_rig(max_body_size=2048)
    async with api_client(create_app(rig.services, max_body_size=2048)) as api:
        batch = [{"event": "a.b", "resource": {"id": f"r{i}"}} for i in range(100)]
        events = await api.post("/api/events", json=batch)
        assert_problem(events, 413, "limit of 2,048 bytes", "split the array of events")
        queues = await api.post("/api/queues", json={"name": "q", "padding": "x" * 4096})
        assert_problem(queues, 413, "limit of 2,048 bytes", "several smaller requests")


async def test_rules_take_a_whole_estate_in_one_apply(make_rig: RigFactory) -> None:
    """Rules have a limit of their own (64 MiB): 12,000 rules are ~16 MB, one apply."""
    rig = await make_rig(max_body_size=2048)
    async with api_client(create_app(rig.services, max_body_size=2048)) as api:
        invalid = [{"name": "x" * 100}] * 50  # past the app's limit, judged on content
        assert_problem(await api.post("/api/rules", json=invalid), 422)
        huge = b"[" + b" " * RULES_MAX_BODY_SIZE + b"]"
        for path in ("/api/rules", "/api/rules/check"):
            refused = await api.post(path, content=huge, headers=JSON)
            assert_problem(refused, 413, "limit of 67,108,864 bytes", "split the rules")


async def test_the_command_line_shows_the_detail(rig: Rig, tmp_path: Path) -> None:
    async with serving_api(rig.services) as url:
        status, out, err = await cli(url, tmp_path, "rules", "pause", "nope")
        assert (status, out) == (1, "")
        assert err == "interlock: error: no rule 'nope' (HTTP 404)\n"
        status, _, err = await cli(url, tmp_path, "queues", "create", "no spaces")
        assert status == 1
        assert "Validation failed for POST /api/queues" in err
        assert "a name (letters, digits, '.', '_' and '-'" in err
        assert "(HTTP 400)" in err
        async with httpx.AsyncClient(base_url=url) as client:
            raw = await client.post("/api/queues", json={"name": "no spaces"})
        assert raw.headers["content-type"] == "application/problem+json"
        assert json.loads(raw.text)["status"] == 400
