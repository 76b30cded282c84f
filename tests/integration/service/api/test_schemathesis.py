"""schemathesis against the service's own OpenAPI schema: no 500, every error a problem
document (issue 14).

The API is served by uvicorn over a real store (SQLite) and a real NATS server; its
schema is read from ``/schema/openapi.json`` over HTTP, as a client would. Every
operation gets :data:`EXAMPLES` positive cases (input the schema allows) and as many
negative ones (input it forbids: wrong types, missing fields, out-of-range numbers), with
random path parameters and again with ones that name seeded records (a rule, a
deployment, a run, a queue, a channel), so that handlers get past their 404s. Requests
carry an admin key, so every route is reached.

Checks, on every answer: the status is below 500; an error (4xx) is
``application/problem+json`` with ``type``, ``title``, ``status`` (the answer's) and
``detail`` — except on the approval links, whose pages are HTML by design.

The cases run in a worker thread (schemathesis calls over ``requests``, synchronously)
while the test's event loop serves the API. A failing case is reported with the curl
command that reproduces it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from integration.service.actions.api_cli import serving_api
from interlock.rules import Rule, notify, on
from interlock.rules.rule import dump_rules
from interlock.service.deployments.catalog import create_deployment
from interlock.service.deployments.runs import start_run

from .conftest import Rig

EXAMPLES = 20
"""Cases per operation, mode and pass (25 s for the whole schema on 2 idle cores in
2026-11; with more operations and a loaded machine, over 120 s)."""

SEEDED_EXCLUDED: set[str] = set()
"""Operations left out of the seeded pass (none: ?index= of actions/resume is bounded)."""


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite: the schema is the same on PostgreSQL, and CI time matters."""
    return f"sqlite:///{tmp_path / 'interlock.db'}"


@dataclass
class Fuzzed:
    """What the cases found."""

    calls: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: set[tuple[str, int]] = field(default_factory=set)


async def _seed(rig: Rig) -> dict[str, str]:
    """Records for the path parameters of the seeded pass."""
    services = rig.services
    rule = Rule(name="seeded-rule", when=on("job.done"), then=[notify("seeded", title="t")])
    await services.rules.apply([rule])
    await services.store.channels.put("seeded", "json://localhost/hook")
    await create_deployment(services, "seeded", target={"type": "process", "command": ["true"]})
    run = await start_run(services, "seeded", reason="test")
    assert json.loads(dump_rules([rule]))  # the rule as the API shows it round-trips
    return {"run_id": str(run.id), "verb": "pause"}


def _seeded_path(path: str, ids: dict[str, str]) -> dict[str, str]:
    names = {
        "/api/rules/": "seeded-rule",
        "/api/deployments/": "seeded",
        "/api/channels/": "seeded",
        "/api/queues/": "default",
    }
    known = dict(ids)
    for prefix, name in names.items():
        if path.startswith(prefix):
            known["name"] = name
    return {key: value for key, value in known.items() if f"{{{key}}}" in path}


def _serves_html(operation: Any) -> bool:
    responses = operation.definition.raw.get("responses", {})
    return any(
        "html" in media for answer in responses.values() for media in answer.get("content", {})
    )


def _check(response: Any, *, html: bool) -> str | None:
    """What is wrong with this answer (``html``: the operation serves pages), or ``None``."""
    status = response.status_code
    media = (response.headers.get("content-type") or [""])[0]
    if status >= 500:
        return f"{status} {response.content[:300]!r}"
    if status < 400 or (html and media.startswith("text/html")):
        return None
    if media != "application/problem+json":
        return f"{status} answered as {media!r}, not application/problem+json"
    body = json.loads(response.content)
    missing = {"type", "title", "status", "detail"} - body.keys()
    if missing or body["status"] != status or not isinstance(body["detail"], str):
        return f"{status}: not a problem document: {body}"
    return None


def _fuzz(schema_document: dict[str, Any], url: str, token: str, ids: dict[str, str]) -> Fuzzed:
    schema = schemathesis.openapi.from_dict(schema_document)
    found = Fuzzed()
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    for result in schema.get_all_operations():
        operation = result.ok()
        passes: list[dict[str, str] | None] = [None]
        if "{" in operation.path and operation.label not in SEEDED_EXCLUDED:
            passes.append(_seeded_path(operation.path, ids))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in passes:
                strategy = operation.as_strategy(
                    generation_mode=mode, path_parameters=path_parameters
                )
                try:
                    _cases(operation, strategy, url, session, headers, found)
                except Unsatisfiable:
                    if mode is GenerationMode.POSITIVE:
                        raise
                    # Nothing to negate (no parameters, or only free-form strings).
    return found


def _cases(
    operation: Any,
    strategy: Any,
    url: str,
    session: requests.Session,
    headers: dict[str, str],
    found: Fuzzed,
) -> None:
    """Run :data:`EXAMPLES` cases of ``strategy``; record what :func:`_check` finds."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(base_url=url, session=session, headers=headers)
        found.calls += 1
        found.statuses.add((operation.label, response.status_code))
        problem = _check(response, html=_serves_html(operation))
        if problem is not None:
            curl = case.as_curl_command(headers=headers)
            shown = curl if len(curl) <= 600 else f"{curl[:600]}... ({len(curl):,} characters)"
            found.failures.append(f"{operation.label}: {problem}\n  {shown}")

    run()


@pytest.mark.timeout(900)  # every operation of the API, 80 cases each: minutes on 2 busy cores
async def test_the_api_against_its_own_schema(rig: Rig) -> None:
    ids = await _seed(rig)
    token = await rig.admin_token()
    async with serving_api(rig.services) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            document = (await client.get("/schema/openapi.json")).json()
        found = await asyncio.to_thread(_fuzz, document, url, token, ids)
    assert found.failures == [], "\n".join(found.failures[:20])
    operations = {label for label, _ in found.statuses}
    assert len(operations) >= 35, sorted(operations)
    # Past the 404s: the seeded pass reached handlers that answer 2xx on real records.
    succeeded = {label for label, status in found.statuses if status < 300}
    assert {"GET /api/rules/{name}", "GET /api/deployments/{name}", "POST /api/events"} <= succeeded


async def test_a_huge_action_index_is_400(rig: Rig) -> None:
    await _seed(rig)
    async with serving_api(rig.services) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            "/api/rules/seeded-rule/actions/resume", params={"index": 2**63}
        )
    assert response.status_code == 400, response.text
