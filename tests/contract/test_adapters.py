"""The adapter contract, run against every ``interlock.adapters`` entry point installed.

What :class:`~interlock.adapters.base.PollingAdapter` promises, checked for each kind
against the real source — moto's S3 and SQS, a SQLite file, PostgreSQL's
``LISTEN``/``NOTIFY``, the session's Airflow API server and Prefect server — with a case
of its own (below: its options, and how to make its source change):

- an unknown option names itself (an :class:`AdapterConfigError` naming it);
- a repeated poll gives the same event ids (JetStream then drops the repeats);
- a checkpoint survives a JSON round trip (what a checkpoint store does to it): it is
  plain JSON data, equal after the trip, and an adapter resuming from the round-tripped
  checkpoint finds what one resuming from the original finds.

``db.listen`` is pushed, not replayable (``NOTIFY`` is not durable): for it, a repeated
poll is the same notification sent again (one that names its id), and the round-tripped
checkpoint is only read back. An entry point without a case fails here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from integration.adapters.db_fixtures import create_sales, insert_sales
from integration.adapters.s3_fixtures import (  # noqa: F401 - moto_server: a fixture
    REGION,
    client,
    moto_server,
    s3_options,
)
from interlock.adapters.base import AdapterConfigError, PollingAdapter, PollResult
from interlock.adapters.config import ENTRY_POINT_GROUP

if TYPE_CHECKING:
    from integration.adapters.airflow.airflow_env import ApiServer

pytestmark = pytest.mark.timeout(300)

KINDS = sorted({point.name for point in entry_points(group=ENTRY_POINT_GROUP)})
DAG = "interlock_api"
UNKNOWN = "no_such_option"


class Source:
    """What one test's adapter polls, arranged on first use."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.request = request
        self.tmp_path = tmp_path
        self.marker = uuid.uuid4().hex[:8]
        self.scratch: dict[str, Any] = {}

    def fixture(self, name: str) -> Any:
        return self.request.getfixturevalue(name)


@dataclass(frozen=True)
class AdapterCase:
    kind: str
    options: Callable[[Source], dict[str, Any]]
    """Options of an adapter of this kind reading the (arranged) source."""
    change: Callable[[Source, int], None]
    """Make the source change (the ``n``-th time) so that a poll has something."""
    pushed: bool = False
    """The source pushes and cannot replay: listen before it changes."""


# -- S3 ---------------------------------------------------------------------------------------


def _moto(source: Source) -> str:
    url: str = source.fixture("moto_server")
    return url


def _s3_options(source: Source) -> dict[str, Any]:
    bucket = f"contract-{source.marker}"
    if "bucket" not in source.scratch:
        client("s3", _moto(source)).create_bucket(Bucket=bucket)
        source.scratch["bucket"] = bucket
    return s3_options(_moto(source), bucket=bucket)


def _s3_change(source: Source, n: int) -> None:
    client("s3", _moto(source)).put_object(
        Bucket=source.scratch["bucket"], Key=f"in/{n}.csv", Body=b"x"
    )


def _sqs_options(source: Source) -> dict[str, Any]:
    if "queue_url" not in source.scratch:
        queue = client("sqs", _moto(source)).create_queue(QueueName=f"contract-{source.marker}")
        source.scratch["queue_url"] = queue["QueueUrl"]
    return s3_options(
        _moto(source),
        queue_url=source.scratch["queue_url"],
        wait_time="0s",
        visibility_timeout="0s",  # unacknowledged, a message comes back at once
    )


def _sqs_change(source: Source, n: int) -> None:
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2026-11-24T09:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": "landing", "arn": "arn:aws:s3:::landing"},
            "object": {"key": f"in/{n}.csv", "size": 1, "eTag": f"etag{n}", "sequencer": "01"},
        },
    }
    client("sqs", _moto(source)).send_message(
        QueueUrl=source.scratch["queue_url"], MessageBody=json.dumps({"Records": [record]})
    )


# -- databases --------------------------------------------------------------------------------


def _sqlite(source: Source) -> str:
    url = f"sqlite:///{source.tmp_path / 'warehouse.db'}"
    if "engine" not in source.scratch:
        source.scratch["engine"] = create_sales(url)
    return url


def _db_change(source: Source, n: int) -> None:
    insert_sales(source.scratch["engine"], 2, amount=-1.0)  # negative: db.check finds them


def _db_case(kind: str, **options: Any) -> AdapterCase:
    return AdapterCase(kind, lambda source: {"url": _sqlite(source), **options}, _db_change)


def _listen_options(source: Source) -> dict[str, Any]:
    url: str = source.fixture("postgres_url")
    source.scratch["engine"] = sa.create_engine(url)
    return {"url": url, "channel": "contract", "wait": "200ms"}


def _listen_change(source: Source, n: int) -> None:
    document = {
        "event": "contract.loaded",
        "resource_id": "warehouse.sales",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{source.marker}/{n}")),
    }
    with source.scratch["engine"].begin() as connection:
        notify = sa.text("SELECT pg_notify('contract', :payload)")
        connection.execute(notify, {"payload": json.dumps(document)})


# -- Airflow and Prefect ----------------------------------------------------------------------


def _airflow(source: Source) -> ApiServer:
    server: ApiServer = source.fixture("airflow_api")
    return server


def _airflow_options(source: Source) -> dict[str, Any]:
    from integration.adapters.airflow.airflow_env import PASSWORD, USERNAME  # noqa: PLC0415

    return {
        "url": _airflow(source).url,
        "username": USERNAME,
        "password": PASSWORD,
        "dag_ids": [DAG],
        "task_instances": False,
        "lookback": "1h",
    }


def _airflow_change(source: Source, n: int) -> None:
    """A DAG run that ended (set so through the API: no scheduler runs here)."""
    from integration.adapters.airflow.airflow_env import api_request  # noqa: PLC0415

    run_id = f"contract__{source.marker}_{n}"
    server = _airflow(source)
    body = {"dag_run_id": run_id, "logical_date": None}
    api_request(server, "POST", f"/api/v2/dags/{DAG}/dagRuns", body)
    api_request(server, "PATCH", f"/api/v2/dags/{DAG}/dagRuns/{run_id}", {"state": "success"})


def _prefect_options(source: Source) -> dict[str, Any]:
    from integration.adapters.prefect.prefect_server import AUTH_STRING  # noqa: PLC0415

    source.fixture("monkeypatch").setenv("CONTRACT_PREFECT_AUTH", AUTH_STRING)
    return {
        "api_url": source.fixture("prefect").api_url,
        "auth_string_env": "CONTRACT_PREFECT_AUTH",
        "names": [f"contract.{source.marker}"],
        "backfill": "5m",
        "wait": "1s",
    }


def _prefect_change(source: Source, n: int) -> None:
    from integration.adapters.prefect.prefect_api import PrefectApi, prefect_event  # noqa: PLC0415

    with PrefectApi(source.fixture("prefect")) as api:
        resource = {"prefect.resource.id": f"contract.{source.marker}.{n}"}
        event = prefect_event(f"contract.{source.marker}", resource)
        api.emit(event)
        # A replay sends what Prefect has persisted (its persister flushes every few s).
        deadline = time.monotonic() + 60
        while not api.recorded([event["id"]]) and time.monotonic() < deadline:
            time.sleep(0.2)


CASES: dict[str, AdapterCase] = {
    case.kind: case
    for case in [
        AdapterCase("s3.poll", _s3_options, _s3_change),
        AdapterCase("s3.sqs", _sqs_options, _sqs_change),
        _db_case("db.freshness", table="sales", column="loaded_at"),
        _db_case("db.rows", table="sales", key_column="id", start="beginning"),
        _db_case("db.check", query="SELECT id FROM sales WHERE amount < 0", slot="1h"),
        AdapterCase("db.listen", _listen_options, _listen_change, pushed=True),
        AdapterCase("airflow.rest", _airflow_options, _airflow_change),
        AdapterCase("prefect.events", _prefect_options, _prefect_change),
    ]
}
OFFLINE: dict[str, dict[str, Any]] = {
    "s3.poll": s3_options("http://127.0.0.1:9", bucket="landing"),
    "s3.sqs": s3_options("http://127.0.0.1:9", queue_url="https://sqs.example.com/1/q"),
    "db.freshness": {"url": "sqlite://", "table": "sales", "column": "loaded_at"},
    "db.rows": {"url": "sqlite://", "table": "sales", "key_column": "id"},
    "db.check": {"url": "sqlite://", "query": "SELECT 1"},
    "db.listen": {"url": "postgresql+psycopg://127.0.0.1:9/x", "channel": "c"},
    "airflow.rest": {"url": "http://127.0.0.1:9", "token": "t"},
    "prefect.events": {"api_url": "http://127.0.0.1:9/api"},
}
"""Valid options of each kind whose source is not reached (building connects nowhere)."""

_SLOW = ("airflow.", "prefect.")


def _params() -> list[Any]:
    return [
        pytest.param(kind, id=kind, marks=[pytest.mark.slow] if kind.startswith(_SLOW) else [])
        for kind in KINDS
    ]


def _case(kind: str) -> AdapterCase:
    case = CASES.get(kind)
    if case is None:
        pytest.fail(f"the adapter {kind!r} has no contract case: add one to test_adapters.py")
    return case


def _kind(kind: str) -> type[PollingAdapter]:
    (point,) = [point for point in entry_points(group=ENTRY_POINT_GROUP) if point.name == kind]
    loaded: type[PollingAdapter] = point.load()
    return loaded


@pytest.fixture
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Source]:
    made = Source(request, tmp_path)
    yield made
    engine = made.scratch.get("engine")
    if engine is not None:
        engine.dispose()


class Adapters:
    """Adapters built from one case's options, closed at the end."""

    def __init__(self, kind: str, options: dict[str, Any]) -> None:
        self.kind = kind
        self.options = options
        self.built: list[PollingAdapter] = []

    def new(self) -> PollingAdapter:
        adapter = _kind(self.kind).from_options("contract", dict(self.options))
        self.built.append(adapter)
        return adapter

    def close(self) -> None:
        for adapter in self.built:
            adapter.close()


@pytest.fixture
def adapters(request: pytest.FixtureRequest, source: Source) -> Iterator[Callable[[], Adapters]]:
    made: list[Adapters] = []

    def build() -> Adapters:
        kind: str = request.node.callspec.params["kind"]
        made.append(Adapters(kind, _case(kind).options(source)))
        return made[-1]

    yield build
    for each in made:
        each.close()


def _first_checkpoint(case: AdapterCase, source: Source, built: Adapters) -> dict[str, Any]:
    """The checkpoint of a first poll that found something."""
    adapter = built.new()
    if case.pushed:
        adapter.poll(None)  # listening before the source speaks
    case.change(source, 1)
    return adapter.poll(None).checkpoint


def _ids(result: PollResult) -> list[str]:
    return sorted(str(event.id) for event in result.events)


def test_every_installed_adapter_has_a_case() -> None:
    assert {"s3.poll", "db.rows", "airflow.rest", "prefect.events"} <= set(KINDS)
    assert sorted(set(KINDS) - set(CASES)) == []
    assert sorted(set(KINDS) - set(OFFLINE)) == []


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_option_names_itself(kind: str) -> None:
    _case(kind)
    _kind(kind).from_options("contract", dict(OFFLINE[kind])).close()  # the options are valid
    with pytest.raises(AdapterConfigError, match=UNKNOWN) as refused:
        _kind(kind).from_options("contract", {**OFFLINE[kind], UNKNOWN: 1})
    assert "contract" in str(refused.value)  # and the adapter


@pytest.mark.parametrize("kind", _params())
def test_a_repeated_poll_gives_the_same_ids(
    kind: str, source: Source, adapters: Callable[[], Adapters]
) -> None:
    case = _case(kind)
    built = adapters()
    adapter = built.new()
    if case.pushed:
        adapter.poll(None)  # listening before the source speaks
    case.change(source, 1)
    first = adapter.poll(None)
    if case.pushed:
        case.change(source, 1)  # the same change again: a pushed source cannot replay
        again = adapter.poll(first.checkpoint)
    else:
        again = built.new().poll(None)
    assert _ids(first) != []
    assert _ids(again) == _ids(first)


@pytest.mark.parametrize("kind", _params())
def test_a_checkpoint_is_plain_json_data(
    kind: str, source: Source, adapters: Callable[[], Adapters]
) -> None:
    checkpoint = _first_checkpoint(_case(kind), source, adapters())
    assert json.loads(json.dumps(checkpoint)) == checkpoint


@pytest.mark.parametrize("kind", _params())
def test_resuming_from_a_round_tripped_checkpoint_finds_the_same(
    kind: str, source: Source, adapters: Callable[[], Adapters]
) -> None:
    case = _case(kind)
    built = adapters()
    checkpoint = _first_checkpoint(case, source, built)
    round_tripped = json.loads(json.dumps(checkpoint))
    if case.pushed:
        built.new().poll(round_tripped)  # read back; nothing to replay
        return
    case.change(source, 2)
    resumed = built.new().poll(checkpoint)
    assert _ids(built.new().poll(round_tripped)) == _ids(resumed)
    assert _ids(resumed) != []
