"""The circuit breaker: an action failing N attempts in a row is suspended for its rule,
its owner told, the suspension kept across restarts, and one call (or command) resumes it."""

from __future__ import annotations

import json
from pathlib import Path

from integration.service.actions.api_cli import cli, serving_api
from integration.service.actions.dispatch_fixtures import (
    all_in,
    dispatching,
    events_named,
    eventually,
    make_rule,
    queue,
    running_services,
    states,
)
from integration.service.actions.receiver import Receiver, Request
from interlock.rules import webhook
from interlock.service.actions.breaker import resume_action


async def test_suspends_after_n_failures_tells_the_owner_survives_a_restart_and_resumes(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    failing = True

    def respond(request: Request) -> tuple[int, float]:
        if request.path.startswith("/hook"):
            return (500 if failing else 200), 0
        return 200, 0

    async with (
        Receiver(respond) as receiver,
        running_services(
            database_url,
            streams,
            tmp_path / "spool",
            max_attempts=1,
            suspend_after=3,
            concurrency=1,
        ) as services,
    ):
        await services.store.channels.put("owners", f"json://127.0.0.1:{receiver.port}/owner")
        rule = make_rule("fragile", [webhook(f"{receiver.url}/hook")], owner="owners")
        await services.rules.apply([rule])
        await queue(services, rule, 5)
        async with dispatching(services):
            await eventually(lambda: all_in(services, "fragile", "failed", "suspended"))
            await eventually(_owner_told(receiver), what="the owner's notification")
        found = await states(services, "fragile")
        assert found.count("failed") == 2
        assert found.count("suspended") == 3  # the third failure opened it; the rest wait
        # Rows claimed before the third failure was recorded still ran once (and were
        # recorded as suspended); none ran after.
        assert 3 <= len(receiver.paths("/hook")) <= 5
        (owner_note,) = receiver.paths("/owner")
        assert "fragile" in owner_note.json()["title"]
        assert "suspended" in owner_note.json()["title"]
        (suspended,) = await events_named(streams, "interlock.action.suspended", expected=1)
        assert suspended.resource_id == "fragile"
        assert suspended.payload["failures"] == 3
        assert suspended.payload["index"] == 0
        assert "HTTP 500" in suspended.payload["error"]
        (breaker,) = await services.store.outbox.breakers()
        assert (breaker.rule, breaker.index, breaker.suspended) == ("fragile", 0, True)

        # A new dispatcher (a restart): the breaker is still open, new firings wait.
        requests_before = len(receiver.paths("/hook"))
        async with dispatching(services):
            await queue(services, rule, 2, first=5)
            await eventually(
                lambda: _count(services, "fragile", "suspended", 5), what="new rows suspended"
            )
        assert len(receiver.paths("/hook")) == requests_before

        failing = False
        assert await resume_action(services, "fragile", 0) == 5
        async with dispatching(services):
            await eventually(lambda: _count(services, "fragile", "succeeded", 5))
        (breaker,) = await services.store.outbox.breakers()
        assert (breaker.failures, breaker.suspended) == (0, False)


async def test_a_success_resets_the_count(database_url: str, streams: str, tmp_path: Path) -> None:
    answers = iter([500, 500, 200, 500, 500, 200])

    async with (
        Receiver(lambda request: (next(answers), 0)) as receiver,
        running_services(
            database_url,
            streams,
            tmp_path / "spool",
            max_attempts=1,
            suspend_after=3,
            concurrency=1,
        ) as services,
    ):
        rule = make_rule("wobbly", [webhook(f"{receiver.url}/hook")])
        await queue(services, rule, 6)
        async with dispatching(services):
            await eventually(lambda: all_in(services, "wobbly", "failed", "succeeded"))
        found = await states(services, "wobbly")
        assert (found.count("failed"), found.count("succeeded")) == (4, 2)
        assert [b.suspended for b in await services.store.outbox.breakers()] == [False]


def _owner_told(receiver: Receiver):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return bool(receiver.paths("/owner"))

    return check


async def _count(services: object, rule: str, state: str, expected: int) -> bool:
    return (await states(services, rule)).count(state) == expected  # type: ignore[arg-type]


async def test_resume_actions_from_the_command_line(
    sqlite_url: str, streams: str, tmp_path: Path
) -> None:
    async with running_services(sqlite_url, streams, tmp_path / "spool") as services:
        rule = make_rule(
            "fragile", [webhook("http://127.0.0.1:9/a"), webhook("http://127.0.0.1:9/b")]
        )
        await services.rules.apply([rule])
        await queue(services, rule, 3)
        assert await services.store.outbox.suspend("fragile", 1, reason="kept failing") == 3
        async with serving_api(services) as url:
            status, out, err = await cli(
                url, tmp_path, "rules", "resume-actions", "fragile", "--index", "1"
            )
            assert (status, out.strip()) == (
                0,
                "rule fragile: circuit breaker of its action 1 closed; "
                "3 suspended action(s) queued again",
            ), err
            assert await states(services, "fragile") == ["pending"] * 6
            status, out, err = await cli(
                url, tmp_path, "rules", "resume-actions", "fragile", "--json"
            )
            assert status == 0, err
            assert json.loads(out) == {"rule": "fragile", "index": None, "resumed": 0}
            status, out, err = await cli(url, tmp_path, "rules", "resume-actions", "nope")
            assert status != 0
            assert len(err.strip().splitlines()) == 1  # one clear line, no traceback
            assert "nope" in err
