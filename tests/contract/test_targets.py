"""The target contract, run against every ``interlock.targets`` entry point installed.

What :mod:`interlock.sdk.targets` promises of every target kind, without calling any
system (the end-to-end behaviour is in
``tests/integration/service/deployments/test_remote_targets.py``):

- it builds from an :class:`~interlock.sdk.executors.ExecutorContext` alone, and
  ``close()`` twice is safe, before and after use;
- it names the kind of connection its targets use, and ``check`` refuses a target
  without ``connection`` or with a field no target of it has, naming the field;
- a target naming a connection that does not exist fails to start at once (not
  retryable), saying which connection, without calling anything.
"""

from __future__ import annotations

import uuid
from importlib.metadata import entry_points

import pytest

from interlock.sdk.connections import CONNECTION_KINDS
from interlock.sdk.errors import ActionFailed
from interlock.sdk.executors import ExecutorContext
from interlock.sdk.targets import GROUP, TargetFactory, TargetInvalid, TargetRun

KINDS = sorted(point.name for point in entry_points(group=GROUP))
# A target each kind accepts, but for its connection (which nobody holds here).
VALID = {
    "airflow": {"dag_id": "sales_daily", "conf": {"full": True}},
    "prefect": {"deployment": "etl/daily", "parameters": {"region": "eu"}},
    "http": {"path": "/jobs", "method": "POST"},
}


def _factory(kind: str) -> TargetFactory:
    (point,) = [point for point in entry_points(group=GROUP) if point.name == kind]
    factory: TargetFactory = point.load()
    return factory


def test_every_installed_kind_has_a_case() -> None:
    assert sorted(VALID) == KINDS


@pytest.mark.parametrize("kind", KINDS)
async def test_a_kind_builds_from_a_context_and_closes_twice(kind: str) -> None:
    target = _factory(kind)(ExecutorContext())
    assert target.connection_kind in CONNECTION_KINDS
    await target.close()
    await target.close()


@pytest.mark.parametrize("kind", KINDS)
def test_check_accepts_a_valid_target_and_names_the_field_of_a_bad_one(kind: str) -> None:
    target = _factory(kind)(ExecutorContext())
    valid = {"type": kind, "connection": "somewhere", **VALID[kind]}
    target.check(valid)
    without = {k: v for k, v in valid.items() if k != "connection"}
    with pytest.raises(TargetInvalid) as missing:
        target.check(without)
    assert missing.value.field == "connection"
    with pytest.raises(TargetInvalid) as unknown:
        target.check({**valid, "colour": "blue"})
    assert unknown.value.field == "colour"
    assert str(unknown.value).startswith("target.colour is not a field of")


@pytest.mark.parametrize("kind", KINDS)
async def test_a_missing_connection_fails_the_start_at_once(kind: str) -> None:
    target = _factory(kind)(ExecutorContext())
    run = TargetRun(
        run_id=uuid.uuid4(),
        deployment="d",
        attempt=1,
        parameters={},
        target={"type": kind, "connection": "nowhere", **VALID[kind]},
    )
    try:
        with pytest.raises(ActionFailed) as failed:
            await target.start(run)
    finally:
        await target.close()
    assert failed.value.retryable is False
    assert "connection 'nowhere' does not exist" in str(failed.value)
