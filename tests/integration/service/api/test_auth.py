"""API keys on a real store: local mode, 401, 403, scopes, and the public-bind refusal."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

import pytest
from litestar import Controller, get

from interlock.sdk.errors import ConfigurationError
from interlock.service.api.app import api_controllers, check_can_serve, create_app
from interlock.service.api.key_cache import DEFAULT_TTL
from interlock.service.store import Store

from .conftest import Rig, RigFactory, api_client


async def test_local_mode_needs_no_key_until_one_exists(rig: Rig) -> None:
    assert (await rig.client.get("/api/rules")).status_code == 200
    token = await rig.admin_token()

    refused = await rig.client.get("/api/rules")
    assert refused.status_code == 401
    assert "interlock keys create" in refused.json()["detail"]
    assert refused.headers["www-authenticate"].startswith("Bearer")

    allowed = await rig.client.get("/api/rules", headers={"Authorization": f"Bearer {token}"})
    assert allowed.status_code == 200


async def test_x_api_key_header_works_too(rig: Rig) -> None:
    token = await rig.admin_token()
    assert (await rig.client.get("/api/keys", headers={"X-API-Key": token})).status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        "ilk_000000000000_wrong",
        "not-a-token",
        "ilk__",
    ],
)
async def test_invalid_token_is_401_and_never_echoed(rig: Rig, token: str) -> None:
    await rig.admin_token()
    response = await rig.client.get("/api/rules", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert token not in response.text


async def test_a_real_token_with_a_changed_secret_is_401_and_not_echoed(rig: Rig) -> None:
    token = await rig.admin_token()
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = await rig.client.get("/api/rules", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert forged not in response.text
    assert token not in response.text


async def test_malformed_authorization_header_is_401(rig: Rig) -> None:
    token = await rig.admin_token()
    response = await rig.client.get("/api/rules", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 401
    assert "Bearer" in response.json()["detail"]
    assert token not in response.text


async def test_scopes_nest_read_write_admin(rig: Rig) -> None:
    read = await rig.token("read")
    write = await rig.token("write")
    admin = await rig.token("admin")

    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    event = {"event": "job.done", "resource": {"id": "job-1"}}
    # read: may read, may not write or administer
    assert (await rig.client.get("/api/rules", headers=auth(read))).status_code == 200
    denied = await rig.client.post("/api/events", json=event, headers=auth(read))
    assert denied.status_code == 403
    assert "needs publish" in denied.json()["detail"]  # read does not publish
    assert read not in denied.text
    assert (await rig.client.get("/api/keys", headers=auth(read))).status_code == 403
    # write: may publish, may not administer
    assert (
        await rig.client.post("/api/events", json=event, headers=auth(write))
    ).status_code == 202
    assert (await rig.client.get("/api/keys", headers=auth(write))).status_code == 403
    # admin: everything
    assert (
        await rig.client.post("/api/events", json=event, headers=auth(admin))
    ).status_code == 202
    assert (await rig.client.get("/api/keys", headers=auth(admin))).status_code == 200


async def test_revoked_key_is_refused(rig: Rig) -> None:
    keep = await rig.admin_token()
    created = await rig.services.store.api_keys.create("temp", ["admin"])
    await rig.services.store.api_keys.revoke(created.key.prefix)
    headers = {"Authorization": f"Bearer {created.token}"}
    assert (await rig.client.get("/api/rules", headers=headers)).status_code == 401
    ok = await rig.client.get("/api/rules", headers={"Authorization": f"Bearer {keep}"})
    assert ok.status_code == 200


async def test_public_bind_without_keys_needs_a_key_and_is_refused_before_serving(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(host="0.0.0.0")
    with pytest.raises(ConfigurationError) as caught:
        await check_can_serve(rig.services)
    assert "interlock keys create NAME --scope admin" in str(caught.value)
    assert caught.value.setting == "api.host"
    # and even if served anyway, no request passes without a key
    assert (await rig.client.get("/api/rules")).status_code == 401

    token = await rig.admin_token()
    await check_can_serve(rig.services)  # a key exists: fine
    ok = await rig.client.get("/api/rules", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200


async def test_local_bind_without_keys_may_serve(rig: Rig) -> None:
    await check_can_serve(rig.services)


async def test_health_and_metrics_need_no_key(rig: Rig) -> None:
    await rig.admin_token()
    health = await rig.client.get("/api/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "nats": "ok", "database": "ok"}
    metrics = await rig.client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "interlock_api_events_received_total" in metrics.text


async def test_health_is_503_naming_nats_when_it_is_down(rig: Rig) -> None:
    await rig.services.publisher.close()
    health = await rig.client.get("/api/health")
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    assert health.json()["nats"] == "disconnected"
    assert health.json()["database"] == "ok"


async def test_health_is_503_naming_the_database_when_it_cannot_be_reached(rig: Rig) -> None:
    # A real store whose PostgreSQL refuses connections (nothing listens on port 1).
    unreachable = Store("postgresql://interlock:secret-pw@127.0.0.1:1/interlock")
    services = dataclasses.replace(rig.services, store=unreachable)
    try:
        async with api_client(create_app(services, controllers=api_controllers())) as client:
            health = await client.get("/api/health")
            rules = await client.get("/api/rules")
    finally:
        await unreachable.close()
    assert health.status_code == 503
    assert health.json()["nats"] == "ok"
    assert "unavailable" in health.json()["database"]
    assert "secret-pw" not in health.text
    # Any other request needing the database is 503 too, without the password.
    assert rules.status_code == 503
    assert "secret-pw" not in rules.text


async def test_openapi_schema_is_served(rig: Rig) -> None:
    schema = await rig.client.get("/schema/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/events" in paths
    assert "/api/rules/{name}/pause" in paths
    events_body = paths["/api/events"]["post"]["requestBody"]
    assert "application/cloudevents-batch+json" in events_body["content"]
    assert "schema_version" in paths["/api/rules"]["post"]["requestBody"]["description"]
    channel_body = paths["/api/channels"]["post"]["requestBody"]["content"]["application/json"]
    assert channel_body["schema"]  # a msgspec struct, documented by Litestar
    for path in paths.values():
        for operation in path.values():
            assert operation.get("summary"), operation


async def test_with_the_default_key_cache_a_new_key_ends_local_mode_within_a_moment(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(key_cache_ttl=DEFAULT_TTL)
    assert (await rig.client.get("/api/rules")).status_code == 200
    token = await rig.admin_token()
    deadline = time.monotonic() + 30
    while (await rig.client.get("/api/rules")).status_code != 401:
        assert time.monotonic() < deadline, "local mode did not end after a key was created"
        await asyncio.sleep(0.1)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await rig.client.get("/api/rules", headers=headers)).status_code == 200
    # and a revoked key stops working within a moment too
    prefix = token.split("_")[1]
    await rig.services.store.api_keys.revoke(prefix)
    while (await rig.client.get("/api/rules", headers=headers)).status_code != 401:
        assert time.monotonic() < deadline, "a revoked key kept working"
        await asyncio.sleep(0.1)


class _Broken(Controller):
    path = "/api/broken"

    @get("/")
    async def broken(self) -> None:
        """Fails like a bug would."""
        raise RuntimeError("secret-internal-detail")


async def test_an_unexpected_error_is_500_logged_and_not_leaked(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    root_handlers = list(logging.getLogger().handlers)
    app = create_app(rig.services, controllers=[*api_controllers(), _Broken])
    async with api_client(app) as client:
        with caplog.at_level(logging.ERROR, logger="interlock.service.api.errors"):
            response = await client.get("/api/broken")
        assert response.status_code == 500
        assert "secret-internal-detail" not in response.text
        assert (await client.get("/api/health")).status_code == 200
    assert any(
        "unexpected error in GET /api/broken" in record.getMessage() and record.exc_info is not None
        for record in caplog.records
    )
    # the web framework left the process's logging alone
    assert logging.getLogger().handlers == root_handlers
