"""The deployment actions through the executor contract, loaded from their entry points."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest

from interlock.rules import run_deployment
from interlock.rules.actions import PauseQueue, PauseSchedule, ResumeQueue, ResumeSchedule
from interlock.sdk.executors import ActionFailed, ActionRequest
from interlock.service.actions.registry import Registry
from interlock.service.context import Services
from interlock.service.deployments import create_deployment


def request(
    action: msgspec.Struct | dict[str, Any], *, key: uuid.UUID | None = None
) -> ActionRequest:
    data = action if isinstance(action, dict) else msgspec.to_builtins(action)
    return ActionRequest(
        idempotency_key=key or uuid.uuid4(),
        firing_id=uuid.uuid4(),
        rule="some-rule",
        kind=data["action"],
        action=data,
        attempt=1,
    )


@pytest.fixture
async def registry(services: Services) -> Registry:
    loaded = Registry.load(services)
    kinds = ["run_deployment", "pause_queue", "resume_queue", "pause_schedule", "resume_schedule"]
    for kind in kinds:
        await loaded.executor(kind)
    return loaded


async def test_run_deployment_starts_one_run_per_idempotency_key(
    services: Services, registry: Registry
) -> None:
    await create_deployment(
        services,
        "backfill",
        target={"type": "process", "command": ["true"]},
        parameters={"full": False},
    )
    executor = await registry.executor("run_deployment")
    key = uuid.uuid4()
    action = run_deployment("backfill", parameters={"date": "2026-03-02"})
    first = await executor.execute(request(action, key=key))
    retried = await executor.execute(request(action, key=key))  # a retry after a crash
    assert first.data["run_id"] == retried.data["run_id"]
    runs = await services.store.runs.list(deployment="backfill")
    assert len(runs) == 1
    assert runs[0].parameters == {"full": False, "date": "2026-03-02"}
    assert runs[0].idempotency_key == str(key)
    assert first.detail == f"run {runs[0].id} of backfill (pending)"
    other = await executor.execute(request(action))
    assert other.data["run_id"] != first.data["run_id"]

    with pytest.raises(ActionFailed, match="no deployment 'nope'") as failed:
        await executor.execute(request(run_deployment("nope")))
    assert failed.value.retryable is False


async def test_queue_and_schedule_actions(services: Services, registry: Registry) -> None:
    await services.store.queues.create("etl")
    await create_deployment(
        services,
        "nightly",
        target={"type": "process", "command": ["true"]},
        queue="etl",
        schedule="0 2 * * *",
    )
    await (await registry.executor("pause_queue")).execute(request(PauseQueue(queue="etl")))
    assert (await services.store.queues.get("etl")).paused
    await (await registry.executor("resume_queue")).execute(request(ResumeQueue(queue="etl")))
    assert not (await services.store.queues.get("etl")).paused

    await (await registry.executor("pause_schedule")).execute(
        request(PauseSchedule(deployment="nightly"))
    )
    assert not (await services.store.deployments.get("nightly")).schedule_enabled
    await (await registry.executor("resume_schedule")).execute(
        request(ResumeSchedule(deployment="nightly"))
    )
    assert (await services.store.deployments.get("nightly")).schedule_enabled

    for kind, action in [
        ("pause_queue", PauseQueue(queue="nope")),
        ("resume_queue", ResumeQueue(queue="nope")),
        ("pause_schedule", PauseSchedule(deployment="nope")),
        ("resume_schedule", ResumeSchedule(deployment="nope")),
    ]:
        with pytest.raises(ActionFailed, match="nope") as failed:
            await (await registry.executor(kind)).execute(request(action))
        assert failed.value.retryable is False
    await registry.close()
