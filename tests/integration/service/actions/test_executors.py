"""The built-in executors run by a real dispatcher: Apprise, webhooks, emit, rule control.

Real store (SQLite and PostgreSQL), real NATS, and a local HTTP receiver standing in for
Apprise's ``json://`` target and for webhook endpoints.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from importlib.metadata import EntryPoint
from pathlib import Path

import msgspec
import pytest

from harness.ports import free_port
from integration.service.actions.dispatch_fixtures import (
    actions_of,
    all_in,
    dispatching,
    events_named,
    eventually,
    make_firing,
    make_rule,
    queue,
    running_services,
)
from integration.service.actions.receiver import Receiver, Request
from interlock.rules import emit, notify, pause_rule, webhook
from interlock.sdk.executors import ActionFailed, ActionRequest
from interlock.service.actions.emit import emitted_event_id
from interlock.service.actions.registry import GROUP, Registry, ServiceContext
from interlock.service.actions.webhook import USER_AGENT, WebhookExecutor
from interlock.service.store import outbox_entries

SECRET = "S3cretT0ken-do-not-print"


async def test_notify_sends_rendered_text_and_never_shows_the_channel_secret(
    database_url: str, streams: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def respond(request: Request) -> tuple[int, float]:
        return (500, 0) if request.path.startswith("/broken") else (200, 0)

    async with (
        Receiver(respond) as receiver,
        running_services(database_url, streams, tmp_path / "spool", max_attempts=2) as services,
    ):
        port = receiver.port
        await services.store.channels.put("team", f"json://127.0.0.1:{port}/hook/{SECRET}")
        await services.store.channels.put("broken", f"json://127.0.0.1:{port}/broken/{SECRET}")
        rule = make_rule(
            "sales-late",
            [
                notify("team", title="Sales table late", body="warehouse.sales missed 09:00"),
                notify("broken", title="t", body="b"),
            ],
        )
        await queue(services, rule)
        async with dispatching(services):
            await eventually(lambda: all_in(services, "sales-late", "succeeded", "failed"))

        sent = receiver.paths("/hook/")
        assert len(sent) == 1
        assert sent[0].json()["title"] == "Sales table late"
        assert sent[0].json()["message"] == "warehouse.sales missed 09:00"
        assert len(receiver.paths("/broken/")) == 2  # retried once, then given up
        good, bad = await actions_of(services, "sales-late")
        assert (good.state, bad.state) == ("succeeded", "failed")
        assert bad.last_error is not None
        assert "channel 'broken'" in bad.last_error
        assert SECRET not in bad.last_error

        events = await events_named(streams, "interlock.action.", expected=3)
        assert sorted(e.event for e in events) == [
            "interlock.action.failed",
            "interlock.action.failed",
            "interlock.action.succeeded",
        ]
        for event in events:
            assert SECRET not in repr(event)
        assert SECRET not in caplog.text
        assert "***" in caplog.text  # Apprise did log about the URL: redacted


async def test_an_unknown_channel_fails_at_once(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    async with running_services(database_url, streams, tmp_path / "spool") as services:
        await queue(services, make_rule("r", [notify("nobody")]))
        async with dispatching(services):
            await eventually(lambda: all_in(services, "r", "failed"))
        (action,) = await actions_of(services, "r")
        assert action.attempts == 1
        assert action.last_error is not None
        assert "no channel 'nobody'" in action.last_error


async def test_webhook_retries_a_500_with_the_same_key_and_gives_up_on_a_404(
    database_url: str, streams: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # DEBUG: every library's logging, aiosqlite's too (which logs SQL parameters unless
    # the store keeps it at INFO).
    caplog.set_level(logging.DEBUG)
    seen: dict[str, int] = {}

    def respond(request: Request) -> tuple[int, float]:
        path = request.path.partition("?")[0]
        seen[path] = seen.get(path, 0) + 1
        if path == "/flaky":
            return (500, 0) if seen[path] <= 2 else (200, 0)
        if path == "/missing":
            return 404, 0
        return 200, 0

    async with (
        Receiver(respond) as receiver,
        running_services(database_url, streams, tmp_path / "spool", max_attempts=5) as services,
    ):
        rule = make_rule(
            "hooks",
            [
                webhook(
                    f"{receiver.url}/flaky?token={SECRET}",
                    headers={"X-Team": "data"},
                    body={"table": "sales"},
                ),
                webhook(f"{receiver.url}/missing?token={SECRET}", method="PUT"),
            ],
        )
        await queue(services, rule)
        async with dispatching(services):
            await eventually(lambda: all_in(services, "hooks", "succeeded", "failed"))

        flaky = [r for r in receiver.requests if r.path.startswith("/flaky")]
        assert len(flaky) == 3
        assert len({r.key for r in flaky}) == 1
        assert flaky[0].key is not None
        assert uuid.UUID(flaky[0].key)
        assert flaky[0].headers["x-team"] == "data"
        assert flaky[0].json() == {"table": "sales"}
        missing = [r for r in receiver.requests if r.path.startswith("/missing")]
        assert len(missing) == 1
        assert missing[0].method == "PUT"

        ok, gone = await actions_of(services, "hooks")
        assert (ok.state, ok.attempts) == ("succeeded", 3)
        assert (gone.state, gone.attempts) == ("failed", 1)
        origin = f"http://127.0.0.1:{receiver.port}"
        assert gone.last_error == f"webhook PUT {origin}: HTTP 404"

        failed = await events_named(streams, "interlock.action.failed", expected=3)
        finals = sorted(
            (e.payload["idempotency_key"] == str(gone.idempotency_key), e.payload["final"])
            for e in failed
        )
        assert finals == [(False, False), (False, False), (True, True)]
        assert all(e.resource_id == "hooks" for e in failed)
        assert all(SECRET not in repr(e) for e in failed)
        assert f"webhook POST {origin}: HTTP 500" in caplog.text  # each call is logged...
        assert SECRET not in caplog.text  # ...without the token in the query


async def test_an_attempt_is_cut_at_the_timeout(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    async with (
        Receiver(lambda request: (200, 10.0)) as receiver,
        running_services(
            database_url, streams, tmp_path / "spool", timeout="300ms", max_attempts=2
        ) as services,
    ):
        await queue(services, make_rule("slow", [webhook(f"{receiver.url}/slow")]))
        async with dispatching(services):
            await eventually(lambda: all_in(services, "slow", "failed"))
        (action,) = await actions_of(services, "slow")
        assert action.attempts == 2
        assert action.last_error is not None
        assert "timed out" in action.last_error or "no result within" in action.last_error


async def test_a_cookie_one_endpoint_sets_is_never_sent_with_a_later_call(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    async with (
        Receiver(set_cookie="session=rule-a-credentials; Path=/") as receiver,
        running_services(database_url, streams, tmp_path / "spool") as services,
    ):
        async with dispatching(services):
            await queue(services, make_rule("first", [webhook(f"{receiver.url}/a")]))
            await eventually(lambda: all_in(services, "first", "succeeded"))
            await queue(services, make_rule("second", [webhook(f"{receiver.url}/b")]))
            await eventually(lambda: all_in(services, "second", "succeeded"))
        assert [r.path for r in receiver.requests] == ["/a", "/b"]
        assert all("cookie" not in r.headers for r in receiver.requests)


async def test_emit_publishes_one_event_with_an_id_from_the_idempotency_key(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    async with running_services(database_url, streams, tmp_path / "spool") as services:
        rule = make_rule(
            "chain",
            [emit("reports.ready", "reports.daily", labels={"team": "bi"}, payload={"n": 3})],
        )
        await queue(services, rule)
        async with dispatching(services):
            await eventually(lambda: all_in(services, "chain", "succeeded"))
        (action,) = await actions_of(services, "chain")
        (event,) = await events_named(streams, "reports.ready", expected=1)
        assert event.id == emitted_event_id(action.idempotency_key)
        assert event.resource == {"id": "reports.daily", "team": "bi"}
        assert event.payload == {"n": 3}
        # A retry publishes the same id: JetStream stores it once.
        await services.publisher.publish(event)
        assert len(await events_named(streams, "reports.ready", expected=2, timeout=1)) == 1


async def test_pause_rule_pauses_through_the_rule_control(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    async with running_services(database_url, streams, tmp_path / "spool") as services:
        target = make_rule("noisy", [])
        await services.rules.apply([target])
        await queue(services, make_rule("guard", [pause_rule("noisy"), pause_rule("ghost")]))
        async with dispatching(services):
            await eventually(lambda: all_in(services, "guard", "succeeded", "failed"))
        assert (await services.store.rules.get("noisy")).paused
        _, ghost = await actions_of(services, "guard")
        assert (ghost.state, ghost.last_error) == ("failed", "pause_rule: no rule 'ghost'")


async def test_a_render_error_and_a_broken_executor_fail_at_once(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    async with running_services(database_url, streams, tmp_path / "spool") as services:
        rule = make_rule("odd", [webhook("http://127.0.0.1:9/x"), emit("a.b", "c")])
        firing = make_firing("odd")
        hook, emitted = outbox_entries(firing, rule.then)
        broken = {**hook.action, "render_error": "field 'url': 'event' is undefined"}
        hook = msgspec.structs.replace(hook, action=broken)
        await services.store.store_batch([firing], [hook, emitted])
        registry = Registry({}, broken={"emit": "ImportError: no module named 'x'"})
        async with dispatching(services, registry=registry):
            await eventually(lambda: all_in(services, "odd", "failed"))
        first, second = await actions_of(services, "odd")
        assert first.attempts == 1
        assert first.last_error == "a template did not render: field 'url': 'event' is undefined"
        assert second.attempts == 1
        assert second.last_error == (
            "no executor for action kind 'emit' (entry point failed to load: "
            "ImportError: no module named 'x')"
        )


async def test_registry_finds_the_built_in_executors_and_builds_each_on_first_use(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    async with running_services(database_url, streams, tmp_path / "spool") as services:
        registry = Registry.load(services)
        try:
            built_in = {"notify", "webhook", "emit", "pause_rule", "resume_rule"}
            assert built_in <= registry.kinds
            assert registry.executors == {}  # nothing is built before it is needed
            waiting = [registry.executor("webhook") for _ in range(5)]
            webhooks = await asyncio.gather(*waiting)
            assert {id(executor) for executor in webhooks} == {id(registry.executors["webhook"])}
            for kind in built_in:
                assert await registry.executor(kind) is registry.executors[kind]
            with pytest.raises(ActionFailed, match="no executor for action kind 'teleport'"):
                await registry.executor("teleport")
        finally:
            await registry.close()


async def test_an_executor_that_fails_to_build_is_reported_when_its_kind_first_runs(
    database_url: str, streams: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_services(database_url, streams, tmp_path / "spool") as services:
        points = {
            "missing": EntryPoint("missing", "interlock.no_such_module:Executor", GROUP),
            "webhook": EntryPoint(
                "webhook", "interlock.service.actions.webhook:WebhookExecutor", GROUP
            ),
        }
        registry = Registry({}, points=points, services=services)
        try:
            for _ in range(2):  # built once: the second call does not import again
                with pytest.raises(ActionFailed) as failed:
                    await registry.executor("missing")
                assert not failed.value.retryable
                assert str(failed.value) == (
                    "no executor for action kind 'missing' (entry point failed to load: "
                    "ModuleNotFoundError: No module named 'interlock.no_such_module')"
                )
            logged = [r for r in caplog.records if "failed to load" in r.getMessage()]
            assert len(logged) == 1
            assert "interlock.no_such_module:Executor" in logged[0].getMessage()
            assert registry.executors == {}
            # Preparing builds what it can; unknown and broken kinds are not its business.
            await registry.prepare({"missing", "teleport", "webhook"})
            assert isinstance(registry.executors.get("webhook"), WebhookExecutor)
            assert set(registry.broken) == {"missing"}
        finally:
            await registry.close()


async def test_webhook_errors_say_what_went_wrong_and_whether_a_retry_can_help(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    async with (
        Receiver() as receiver,
        running_services(database_url, streams, tmp_path / "spool") as services,
    ):
        executor = WebhookExecutor(ServiceContext.of(services))
        port = free_port()  # nobody listens on it
        cases = {
            f"ftp://127.0.0.1/{SECRET}": ("not a valid http(s) URL", False),
            "http://": ("not a valid http(s) URL", False),
            f"http://127.0.0.1:{port}/x?token={SECRET}": ("connection failed", True),
        }
        try:
            for url, (reason, retryable) in cases.items():
                with pytest.raises(ActionFailed) as failed:
                    await executor.execute(webhook_request({"url": url, "method": "POST"}))
                assert reason in str(failed.value)
                assert failed.value.retryable is retryable
                assert SECRET not in str(failed.value)
            with pytest.raises(ActionFailed) as failed:
                await executor.execute(
                    webhook_request({"url": f"{receiver.url}/x", "body": {"at": object()}})
                )
            assert "the body is not JSON" in str(failed.value)
            assert not failed.value.retryable
            bad_headers = {
                "café": "a header name or value is not ASCII",
                "a\r\nInjected: yes": "the request is not valid HTTP",
            }
            for value, reason in bad_headers.items():
                with pytest.raises(ActionFailed) as failed:
                    await executor.execute(
                        webhook_request({"url": f"{receiver.url}/h", "headers": {"X-Note": value}})
                    )
                assert reason in str(failed.value)
                assert not failed.value.retryable
            sent = webhook_request(
                {"url": f"{receiver.url}/ua", "headers": {"user-agent": "team-hook/2"}}
            )
            await executor.execute(sent)
            await executor.execute(webhook_request({"url": f"{receiver.url}/default"}))
        finally:
            await executor.close()
        agents = {r.path: r.headers["user-agent"] for r in receiver.requests}
        assert agents == {"/ua": "team-hook/2", "/default": USER_AGENT}


def webhook_request(action: dict[str, object]) -> ActionRequest:
    key = uuid.uuid4()
    return ActionRequest(
        idempotency_key=key,
        firing_id=key,
        rule="hooks",
        kind="webhook",
        action={"action": "webhook", **action},
        attempt=1,
    )
