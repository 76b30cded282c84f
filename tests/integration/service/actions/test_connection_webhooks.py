"""Webhooks naming an ``http`` connection (issue 20), through the real dispatcher.

The connection's base URL and bearer token are resolved when each action runs: a token
rotated while the dispatcher runs is sent by the next call, with no restart; the
failure with the old token names the origin and HTTP status, never the token; a missing
connection fails at once, naming it.
"""

from __future__ import annotations

from pathlib import Path

from integration.service.actions.dispatch_fixtures import (
    actions_of,
    all_in,
    dispatching,
    eventually,
    make_rule,
    queue,
    running_services,
)
from integration.service.api.test_connections import TOKEN, BearerEndpoint
from interlock.rules import webhook

OLD = "old-" + TOKEN


async def test_a_rotated_token_is_sent_by_the_next_call(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    endpoint = BearerEndpoint(TOKEN)
    try:
        async with running_services(
            database_url, streams, tmp_path / "spool", max_attempts=1
        ) as services:
            connections = services.store.connections
            await connections.put(
                "tickets",
                "http",
                {"base_url": f"{endpoint.url}/api", "token": OLD, "headers": {"X-Team": "data"}},
            )
            rule = make_rule(
                "open-ticket",
                [webhook(connection="tickets", path="/issues", body={"title": "late"})],
            )
            async with dispatching(services):
                await queue(services, rule)
                await eventually(lambda: all_in(services, rule.name, "failed"), what="a 401")
                [failed] = await actions_of(services, rule.name)
                assert failed.last_error == f"webhook POST {endpoint.url}: HTTP 401"
                assert TOKEN not in (failed.last_error or "")

                await connections.rotate("tickets", {"token": TOKEN})  # while it runs
                await queue(services, rule, first=1)
                await eventually(
                    lambda: _succeeded(services, rule.name, 1), what="the call after the rotation"
                )
            assert endpoint.seen == [
                ("/api/issues", f"Bearer {OLD}"),
                ("/api/issues", f"Bearer {TOKEN}"),
            ]

            missing = make_rule("nowhere", [webhook(connection="no-such", path="/x")])
            async with dispatching(services):
                await queue(services, missing)
                await eventually(lambda: all_in(services, "nowhere", "failed"), what="a failure")
            [gone] = await actions_of(services, "nowhere")
            assert gone.attempts == 1
            assert "connection 'no-such' does not exist" in (gone.last_error or "")
    finally:
        endpoint.close()


async def _succeeded(services: object, rule: str, count: int) -> bool:
    found = await actions_of(services, rule)  # type: ignore[arg-type]
    return sum(a.state == "succeeded" for a in found) >= count
