"""One case per action kind, for the executor contract suite (``test_executors.py``).

A case says, for its kind, how to build the context an executor gets, what a working
action is and what it acts on, how many times it acted, and how to make it fail with a
secret in its action or its environment. The things acted on are real: the service's
store (SQLite) and NATS for the service's own executors, a local HTTP receiver for
webhooks and Apprise (``json://``), and the session's Prefect server and Airflow API
server (the same ones the adapters' integration tests use) for the adapters' executors.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.nats import nats_client
from integration.service.actions.dispatch_fixtures import running_services
from integration.service.actions.receiver import Receiver, Request
from interlock.rules import Rule, notify, on
from interlock.sdk import EVENTS_STREAM
from interlock.sdk.executors import ActionRequest, ExecutorContext
from interlock.service.actions.registry import ServiceContext
from interlock.service.context import Services
from interlock.service.deployments import create_deployment

if TYPE_CHECKING:
    from integration.adapters.airflow.airflow_env import ApiServer
    from integration.adapters.prefect.prefect_api import PrefectApi
    from interlock.adapters.prefect import PrefectConnection

SECRET = "Zq8-contract-secret-never-shown"
DAG = "interlock_api"
DOWN = "http://127.0.0.1:9"
"""Nothing listens there: a connection is refused at once."""


def _respond(request: Request) -> tuple[int, float]:
    return (500, 0.0) if request.path.startswith("/broken") else (200, 0.0)


@dataclass
class Rig:
    """What the cases act on, made on first use within one test."""

    stack: AsyncExitStack
    fixtures: pytest.FixtureRequest
    tmp_path: Path
    nats_url: str
    scratch: dict[str, Any] = field(default_factory=dict)
    _services: Services | None = None
    _receiver: Receiver | None = None

    async def services(self) -> Services:
        if self._services is None:
            database = f"sqlite:///{self.tmp_path / 'interlock.db'}"
            self._services = await self.stack.enter_async_context(
                running_services(database, self.nats_url, self.tmp_path / "spool")
            )
        return self._services

    async def receiver(self) -> Receiver:
        if self._receiver is None:
            self._receiver = await self.stack.enter_async_context(Receiver(_respond))
        return self._receiver

    def prefect(self) -> PrefectConnection:
        connection: PrefectConnection = self.fixtures.getfixturevalue("prefect")
        return connection

    def prefect_api(self) -> PrefectApi:
        from integration.adapters.prefect.prefect_api import PrefectApi  # noqa: PLC0415

        api = self.scratch.get("prefect_api")
        if api is None:
            api = self.scratch["prefect_api"] = PrefectApi(self.prefect())
            self.stack.callback(api.client.close)
        return api  # type: ignore[no-any-return]

    def airflow(self) -> ApiServer:
        server: ApiServer = self.fixtures.getfixturevalue("airflow_api")
        return server


@asynccontextmanager
async def rig(fixtures: pytest.FixtureRequest, tmp_path: Path, nats_url: str) -> AsyncIterator[Rig]:
    async with AsyncExitStack() as stack:
        yield Rig(stack, fixtures, tmp_path, nats_url)


Action = dict[str, Any]
Environ = Mapping[str, str]


@dataclass(frozen=True)
class Case:
    """How the contract is checked for one action kind."""

    kind: str
    context: Callable[[Rig, Environ], Awaitable[ExecutorContext]]
    """The context the executor is built from, with this environment."""
    working: Callable[[Rig], Awaitable[tuple[Action, Environ]]]
    """An action that works (its target arranged), and the environment it needs."""
    acted: Callable[[Rig, ActionRequest], Awaitable[int]]
    """How many times the target saw the action happen."""
    failing: Callable[[Rig], Awaitable[tuple[Action, Environ]]]
    """An action that fails, with :data:`SECRET` in it or in its environment."""
    cleanup: Callable[[Rig], Awaitable[None]] | None = None
    unconfigured: Action | None = None
    """For a plugin: an action that only works with a connection from the environment."""
    not_idempotent: str | None = None
    """Why a retry may act twice (the test then fails strictly as expected)."""


async def plugin_context(rig: Rig, environ: Environ) -> ExecutorContext:
    return ExecutorContext(action_timeout=30.0, environ=dict(environ))


async def service_context(rig: Rig, environ: Environ) -> ExecutorContext:
    return ServiceContext.of(await rig.services(), environ=environ)


# -- the service's executors ----------------------------------------------------------------


async def _notify_working(rig: Rig) -> tuple[Action, Environ]:
    receiver = await rig.receiver()
    await (await rig.services()).store.channels.put(
        "team", f"json://127.0.0.1:{receiver.port}/hook"
    )
    return {"channel": "team", "title": "Sales late", "body": "missed 09:00"}, {}


async def _notify_acted(rig: Rig, request: ActionRequest) -> int:
    return len((await rig.receiver()).paths("/hook"))


async def _notify_failing(rig: Rig) -> tuple[Action, Environ]:
    receiver = await rig.receiver()
    url = f"json://127.0.0.1:{receiver.port}/broken/{SECRET}"
    await (await rig.services()).store.channels.put("broken", url)
    return {"channel": "broken", "title": "t", "body": "b"}, {}


async def _webhook_working(rig: Rig) -> tuple[Action, Environ]:
    receiver = await rig.receiver()
    return {"url": f"{receiver.url}/hook?token=t", "method": "POST", "body": {"a": 1}}, {}


async def _webhook_acted(rig: Rig, request: ActionRequest) -> int:
    """A receiver that honours ``Idempotency-Key`` acts once per key."""
    return len({r.key for r in (await rig.receiver()).paths("/hook")})


async def _webhook_failing(rig: Rig) -> tuple[Action, Environ]:
    receiver = await rig.receiver()
    return {"url": f"{receiver.url}/broken?token={SECRET}", "method": "POST"}, {}


async def _emit_working(rig: Rig) -> tuple[Action, Environ]:
    await rig.services()
    name = rig.scratch["event"] = f"contract.emitted{uuid.uuid4().hex[:8]}"
    return {"event": name, "resource_id": "r1", "payload": {"n": 1}}, {}


async def _emit_acted(rig: Rig, request: ActionRequest) -> int:
    """Events stored on the action's subject: its id is the key's, so JetStream keeps one."""
    subject = f"interlock.events.{rig.scratch['event']}"
    async with nats_client(rig.nats_url) as client:
        info = await client.jetstream().stream_info(EVENTS_STREAM, subjects_filter=subject)
    return (info.state.subjects or {}).get(subject, 0)


async def _emit_failing(rig: Rig) -> tuple[Action, Environ]:
    await rig.services()
    return {"event": "bad..name", "resource_id": "r", "payload": {"token": SECRET}}, {}


WATCHED = "contract-watched"


def _toggle_case(
    kind: str,
    field: str,
    name: str,
    arrange: Callable[[Services, bool], Awaitable[None]],
    state: Callable[[Services], Awaitable[bool]],
    to: bool,
) -> Case:
    """A service executor that sets one flag of a named record (a retry sets it again)."""

    async def working(rig: Rig) -> tuple[Action, Environ]:
        await arrange(await rig.services(), not to)
        return {field: name}, {}

    async def acted(rig: Rig, request: ActionRequest) -> int:
        return int(await state(await rig.services()) is to)

    async def failing(rig: Rig) -> tuple[Action, Environ]:
        await rig.services()
        return {field: "no-such-thing", "token": SECRET}, {}

    return Case(kind, service_context, working, acted, failing)


async def _set_rule_paused(services: Services, paused: bool) -> None:
    await services.rules.apply([Rule(name=WATCHED, when=on("x.y"), then=[notify("team")])])
    if paused:
        await services.rules.set_paused(WATCHED, True)


async def _rule_paused(services: Services) -> bool:
    return (await services.store.rules.get(WATCHED)).paused


async def _set_queue_paused(services: Services, paused: bool) -> None:
    await services.store.queues.create("etl")
    await services.store.queues.set_paused("etl", paused)


async def _queue_paused(services: Services) -> bool:
    return (await services.store.queues.get("etl")).paused


async def _deployment(services: Services, *, schedule: str | None = None) -> None:
    target = {"type": "process", "command": ["true"]}
    await create_deployment(services, "backfill", target=target, schedule=schedule)


async def _set_schedule_enabled(services: Services, enabled: bool) -> None:
    await _deployment(services, schedule="0 2 * * *")
    await services.store.deployments.set_schedule_enabled("backfill", enabled)


async def _schedule_enabled(services: Services) -> bool:
    return (await services.store.deployments.get("backfill")).schedule_enabled


async def _run_working(rig: Rig) -> tuple[Action, Environ]:
    await _deployment(await rig.services())
    return {"deployment": "backfill", "parameters": {"date": "2026-03-02"}}, {}


async def _run_acted(rig: Rig, request: ActionRequest) -> int:
    return len(await (await rig.services()).store.runs.list(deployment="backfill"))


async def _run_failing(rig: Rig) -> tuple[Action, Environ]:
    await rig.services()
    return {"deployment": "nope", "parameters": {"password": SECRET}}, {}


# -- the adapters' executors ----------------------------------------------------------------


def _prefect_environ(rig: Rig) -> Environ:
    from integration.adapters.prefect.prefect_server import AUTH_STRING  # noqa: PLC0415

    return {
        "INTERLOCK_PREFECT_API_URL": rig.prefect().api_url,
        "INTERLOCK_PREFECT_AUTH_STRING": AUTH_STRING,
    }


async def _prefect_failing(rig: Rig) -> tuple[Action, Environ]:
    environ = {"INTERLOCK_PREFECT_API_URL": f"{DOWN}/api", "INTERLOCK_PREFECT_API_KEY": SECRET}
    return {"deployment": "flow/deployment", "queue": "q"}, environ


async def _prefect_run_working(rig: Rig) -> tuple[Action, Environ]:
    flow = f"contract-{uuid.uuid4().hex[:8]}"
    api = rig.prefect_api()
    rig.scratch["deployment_id"] = await asyncio.to_thread(api.deployment, flow, "daily", {})
    return {"deployment": f"{flow}/daily", "parameters": {"day": "2026-03-02"}}, _prefect_environ(
        rig
    )


async def _prefect_run_acted(rig: Rig, request: ActionRequest) -> int:
    runs = await asyncio.to_thread(rig.prefect_api().flow_runs, rig.scratch["deployment_id"])
    return len(runs)


def _prefect_queue_case(kind: str, paused: bool) -> Case:
    async def working(rig: Rig) -> tuple[Action, Environ]:
        pool, queue = f"pool-{uuid.uuid4().hex[:8]}", "q"
        await asyncio.to_thread(rig.prefect_api().pool_queue, pool, queue)
        rig.scratch["pool"] = pool
        return {"queue": queue, "work_pool": pool}, _prefect_environ(rig)

    async def acted(rig: Rig, request: ActionRequest) -> int:
        found = await asyncio.to_thread(rig.prefect_api().queue_in_pool, rig.scratch["pool"], "q")
        return int(found["is_paused"] is paused)

    return Case(
        kind,
        plugin_context,
        working,
        acted,
        _prefect_failing,
        unconfigured={"queue": "q", "work_pool": "p"},
    )


def _airflow_environ(rig: Rig) -> Environ:
    from integration.adapters.airflow.airflow_env import PASSWORD, USERNAME  # noqa: PLC0415

    return {
        "INTERLOCK_AIRFLOW_URL": rig.airflow().url,
        "INTERLOCK_AIRFLOW_USERNAME": USERNAME,
        "INTERLOCK_AIRFLOW_PASSWORD": PASSWORD,
    }


def _airflow_api(rig: Rig, method: str, path: str, body: object = None) -> dict[str, Any]:
    from integration.adapters.airflow.airflow_env import api_request  # noqa: PLC0415

    return api_request(rig.airflow(), method, path, body)


async def _airflow_failing(rig: Rig) -> tuple[Action, Environ]:
    environ = {
        "INTERLOCK_AIRFLOW_URL": DOWN,
        "INTERLOCK_AIRFLOW_USERNAME": "interlock",
        "INTERLOCK_AIRFLOW_PASSWORD": SECRET,
    }
    return {"dag_id": DAG}, environ


async def _trigger_working(rig: Rig) -> tuple[Action, Environ]:
    return {"dag_id": DAG, "conf": {"day": "2026-03-02"}}, _airflow_environ(rig)


async def _trigger_acted(rig: Rig, request: ActionRequest) -> int:
    run_id = f"interlock__{request.idempotency_key}"
    runs = await asyncio.to_thread(
        _airflow_api, rig, "GET", f"/api/v2/dags/{DAG}/dagRuns?limit=100"
    )
    return sum(run["dag_run_id"] == run_id for run in runs["dag_runs"])


def _airflow_pause_case(kind: str, paused: bool) -> Case:
    async def working(rig: Rig) -> tuple[Action, Environ]:
        await asyncio.to_thread(
            _airflow_api, rig, "PATCH", f"/api/v2/dags/{DAG}", {"is_paused": not paused}
        )
        return {"dag_id": DAG}, _airflow_environ(rig)

    async def acted(rig: Rig, request: ActionRequest) -> int:
        dag = await asyncio.to_thread(_airflow_api, rig, "GET", f"/api/v2/dags/{DAG}")
        return int(dag["is_paused"] is paused)

    async def cleanup(rig: Rig) -> None:
        await asyncio.to_thread(
            _airflow_api, rig, "PATCH", f"/api/v2/dags/{DAG}", {"is_paused": True}
        )

    return Case(
        kind,
        plugin_context,
        working,
        acted,
        _airflow_failing,
        cleanup,
        unconfigured={"dag_id": DAG},
    )


CASES: dict[str, Case] = {
    case.kind: case
    for case in [
        Case(
            "notify",
            service_context,
            _notify_working,
            _notify_acted,
            _notify_failing,
            not_idempotent="Apprise targets take no idempotency key: a retry notifies again",
        ),
        Case("webhook", service_context, _webhook_working, _webhook_acted, _webhook_failing),
        Case("emit", service_context, _emit_working, _emit_acted, _emit_failing),
        _toggle_case("pause_rule", "rule", WATCHED, _set_rule_paused, _rule_paused, True),
        _toggle_case("resume_rule", "rule", WATCHED, _set_rule_paused, _rule_paused, False),
        Case("run_deployment", service_context, _run_working, _run_acted, _run_failing),
        _toggle_case("pause_queue", "queue", "etl", _set_queue_paused, _queue_paused, True),
        _toggle_case("resume_queue", "queue", "etl", _set_queue_paused, _queue_paused, False),
        _toggle_case(
            "pause_schedule",
            "deployment",
            "backfill",
            _set_schedule_enabled,
            _schedule_enabled,
            False,
        ),
        _toggle_case(
            "resume_schedule",
            "deployment",
            "backfill",
            _set_schedule_enabled,
            _schedule_enabled,
            True,
        ),
        Case(
            "prefect_run_deployment",
            plugin_context,
            _prefect_run_working,
            _prefect_run_acted,
            _prefect_failing,
            unconfigured={"deployment": "flow/deployment"},
        ),
        _prefect_queue_case("prefect_pause_work_queue", paused=True),
        _prefect_queue_case("prefect_resume_work_queue", paused=False),
        Case(
            "airflow_trigger_dag",
            plugin_context,
            _trigger_working,
            _trigger_acted,
            _airflow_failing,
            unconfigured={"dag_id": DAG},
        ),
        _airflow_pause_case("airflow_pause_dag", paused=True),
        _airflow_pause_case("airflow_unpause_dag", paused=False),
    ]
}
