"""The executor contract, run against every ``interlock.actions`` entry point installed.

What :mod:`interlock.sdk.executors` promises of every executor, checked for each kind
with a case of its own (``executor_cases.py``: what it acts on, for real):

- it builds from a context; a plugin reads the context's environment, never
  ``os.environ``;
- ``close()`` twice is safe;
- a retry with the same idempotency key acts once;
- an :class:`~interlock.sdk.errors.ActionFailed` message holds no secret of the action
  or of the environment.

An entry point without a case fails here: a new executor comes with its case.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from contract.executor_cases import CASES, DOWN, SECRET, Case, Rig, rig
from harness.nats import init_streams, running_nats_server
from interlock.sdk.errors import InterlockError
from interlock.sdk.executors import GROUP, ActionFailed, ActionRequest, Executor, ExecutorFactory

pytestmark = pytest.mark.timeout(300)

KINDS = sorted({point.name for point in entry_points(group=GROUP)})
_SLOW = ("prefect_", "airflow_")


def _param(kind: str) -> Any:
    marks = [pytest.mark.slow] if kind.startswith(_SLOW) else []
    return pytest.param(kind, id=kind, marks=marks)


PARAMS = [_param(kind) for kind in KINDS]


@pytest.fixture(scope="module")
def contract_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One NATS server with Interlock's streams for the module (each test its own store)."""
    with running_nats_server(tmp_path_factory.mktemp("contract-nats")) as server:
        init_streams(server.url)
        yield server.url


def _factory(kind: str) -> ExecutorFactory:
    (point,) = [point for point in entry_points(group=GROUP) if point.name == kind]
    factory: ExecutorFactory = point.load()
    return factory


def _case(kind: str) -> Case:
    case = CASES.get(kind)
    if case is None:
        pytest.fail(f"the executor {kind!r} has no contract case: add one to executor_cases.py")
    return case


def _request(kind: str, action: dict[str, Any], key: uuid.UUID, attempt: int) -> ActionRequest:
    return ActionRequest(
        idempotency_key=key,
        firing_id=uuid.uuid4(),
        rule="contract",
        kind=kind,
        action={"action": kind, **action},
        attempt=attempt,
    )


@asynccontextmanager
async def _executor(kind: str, made: Rig, environ: Mapping[str, str]) -> AsyncIterator[Executor]:
    """The kind's executor built from its context; closed (and its target tidied) after."""
    case = _case(kind)
    executor = _factory(kind)(await case.context(made, environ))
    try:
        yield executor
    finally:
        await executor.close()
        if case.cleanup is not None:
            await case.cleanup(made)


def test_every_installed_executor_has_a_case() -> None:
    assert {"notify", "webhook", "prefect_run_deployment", "airflow_trigger_dag"} <= set(KINDS)
    assert sorted(set(KINDS) - set(CASES)) == []


@pytest.mark.parametrize("kind", PARAMS)
async def test_builds_from_a_context(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    contract_nats: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = _case(kind)
    # What the process's environment says must not reach a plugin: only its context.
    for name in ("INTERLOCK_PREFECT_API_URL", "INTERLOCK_AIRFLOW_URL"):
        monkeypatch.setenv(name, f"{DOWN}/api")
    async with rig(request, tmp_path, contract_nats) as made, _executor(kind, made, {}) as built:
        assert inspect.iscoroutinefunction(built.execute)
        assert inspect.iscoroutinefunction(built.close)
        if case.unconfigured is not None:
            with pytest.raises(ActionFailed) as failed:
                await built.execute(_request(kind, case.unconfigured, uuid.uuid4(), 1))
            assert failed.value.retryable is False  # not configured, never "unreachable"
            assert "127.0.0.1:9" not in str(failed.value)


@pytest.mark.parametrize("kind", PARAMS)
async def test_close_twice_is_safe(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, contract_nats: str
) -> None:
    async with rig(request, tmp_path, contract_nats) as made:
        action, environ = await _case(kind).working(made)
        async with _executor(kind, made, environ) as built:
            await built.execute(_request(kind, action, uuid.uuid4(), 1))
            await built.close()  # and once more as the block ends


def _once_params() -> list[Any]:
    params = []
    for kind in KINDS:
        case = CASES.get(kind)
        marks = list(_param(kind).marks)
        if case is not None and case.not_idempotent:
            marks.append(pytest.mark.xfail(reason=case.not_idempotent, strict=True))
        params.append(pytest.param(kind, id=kind, marks=marks))
    return params


@pytest.mark.parametrize("kind", _once_params())
async def test_a_retry_with_the_same_idempotency_key_acts_once(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, contract_nats: str
) -> None:
    case = _case(kind)
    async with rig(request, tmp_path, contract_nats) as made:
        action, environ = await case.working(made)
        key = uuid.uuid4()
        async with _executor(kind, made, environ) as built:
            await built.execute(_request(kind, action, key, 1))
            await built.execute(_request(kind, action, key, 2))  # a retry after a crash
            assert await case.acted(made, _request(kind, action, key, 2)) == 1


@pytest.mark.parametrize("kind", PARAMS)
async def test_no_secret_in_an_action_failed_message(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, contract_nats: str
) -> None:
    case = _case(kind)
    async with rig(request, tmp_path, contract_nats) as made:
        action, environ = await case.failing(made)
        async with _executor(kind, made, environ) as built:
            with pytest.raises(ActionFailed) as failed:
                await built.execute(_request(kind, action, uuid.uuid4(), 1))
    error = failed.value
    assert isinstance(error, InterlockError)
    assert str(error)  # it names what failed...
    assert SECRET not in str(error)  # ...never a secret
    assert SECRET not in repr(error.args)
