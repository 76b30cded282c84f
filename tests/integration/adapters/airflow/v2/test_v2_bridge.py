"""``airflow.rest`` with ``api_version = "v1"`` against a real Airflow 2.10 webserver.

The runs ``interlock_ok`` and ``interlock_fail`` were made by ``airflow dags test
--use-executor`` with the plugin loaded (``conftest.py``); the bridge finds them through
``/api/v1`` (HTTP basic authentication) and must publish the same ids, so JetStream
stores each change once.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from harness.nats import stored_events
from integration.adapters.airflow.airflow_env import (
    PASSWORD,
    USERNAME,
    ApiServer,
    DagTests,
    api_request,
)
from interlock.adapters.airflow.bridge import AirflowRestAdapter
from interlock.adapters.base import SourceRefused
from interlock.adapters.config import adapter_kind
from interlock.sdk import Event, NatsOptions, PublisherConfig, SyncPublisher

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PLUGIN_DAGS = ("interlock_ok", "interlock_fail")


def _adapter(server: ApiServer, **options: Any) -> AirflowRestAdapter:
    adapter = adapter_kind("airflow.rest", "airflow2-test").from_options(
        "airflow2-test",
        {
            "url": server.url,
            "api_version": "v1",
            "username": USERNAME,
            "password": PASSWORD,
            **options,
        },
    )
    assert isinstance(adapter, AirflowRestAdapter)
    return adapter


def _poll_all(
    adapter: AirflowRestAdapter, checkpoint: dict[str, Any] | None
) -> tuple[list[Event], dict[str, Any], int]:
    """Poll until the listing is complete; return the events, checkpoint and poll count."""
    events: list[Event] = []
    polls = 0
    while True:
        result = adapter.poll(checkpoint)
        polls += 1
        events.extend(result.events)
        checkpoint = result.checkpoint
        if not result.more:
            return events, checkpoint, polls
        assert polls < 100, "the listing never ends"


def _publish(nats_url: str, spool: Path, events: list[Event]) -> None:
    config = PublisherConfig(
        nats=NatsOptions(servers=(nats_url,)), spool_dir=spool, source="adapter.airflow.rest"
    )
    with SyncPublisher(config) as publisher:
        publisher.publish_many(events)


def test_the_bridge_publishes_the_plugins_events_with_the_same_ids(
    airflow2_dag_tests: DagTests, airflow2_api: ApiServer, airflow2_nats: str, tmp_path: Path
) -> None:
    assert airflow2_dag_tests.results["interlock_ok"].returncode == 0
    adapter = _adapter(airflow2_api, lookback="1h", dag_ids=list(PLUGIN_DAGS))
    try:
        events, checkpoint, _ = _poll_all(adapter, None)
        again, _, _ = _poll_all(adapter, checkpoint)
    finally:
        adapter.close()
    assert {event.payload["dag_id"] for event in events} == set(PLUGIN_DAGS)
    assert again == []  # a re-poll publishes nothing new

    plugin = [
        event
        for event in stored_events(airflow2_nats, expected=8)
        if event.payload.get("dag_id") in PLUGIN_DAGS and event.source.endswith("listener")
    ]
    assert len(plugin) == 8
    by_id = {event.id: event for event in events}
    for mine in plugin:
        theirs = by_id.get(mine.id)
        assert theirs is not None, f"the bridge has no {mine.event} {mine.resource}"
        assert theirs.event == mine.event
        assert theirs.resource == mine.resource
        assert theirs.related == mine.related
        for field in ("run_id", "run_type", "logical_date", "start_date", "try_number", "state"):
            assert theirs.payload.get(field) == mine.payload.get(field), field
        # v1 has `logical_date` and `execution_date`; both are the run's logical date.
        assert theirs.payload["logical_date"] is not None
        # A task's end: the task process's clock in the plugin, Airflow's database here.
        assert abs((theirs.occurred - mine.occurred).total_seconds()) < 5
    # `dags test` calls no on_dag_run_running; the bridge sees the runs' start.
    extra = sorted(event.event for event in events if event.id not in {e.id for e in plugin})
    assert extra == ["airflow.dag_run.running", "airflow.dag_run.running"]

    _publish(airflow2_nats, tmp_path / "spool", events)
    stored = [
        event
        for event in stored_events(airflow2_nats, expected=10)
        if event.payload.get("dag_id") in PLUGIN_DAGS
    ]
    assert len(stored) == 10  # 8 from the plugin + 2 runs' `running`: nothing twice
    assert len({event.id for event in stored}) == 10


def test_pages_spread_over_several_polls_find_the_same_events(
    airflow2_dag_tests: DagTests, airflow2_api: ApiServer
) -> None:
    """v1 has no ``order_by`` here: its default order (by id) must make offsets stable."""
    assert airflow2_dag_tests.results["interlock_ok"].returncode == 0
    whole = _adapter(airflow2_api, lookback="1h", dag_ids=list(PLUGIN_DAGS))
    paged = _adapter(
        airflow2_api, lookback="1h", dag_ids=list(PLUGIN_DAGS), page_size=1, max_items_per_poll=1
    )
    try:
        expected, _, _ = _poll_all(whole, None)
        events, _, polls = _poll_all(paged, None)
    finally:
        whole.close()
        paged.close()
    assert len(expected) == 10
    assert polls > 3
    assert sorted(str(event.id) for event in events) == sorted(str(event.id) for event in expected)


def test_a_run_changed_through_the_api_after_the_checkpoint_is_the_only_new_event(
    airflow2_api: ApiServer, airflow2_nats: str, tmp_path: Path
) -> None:
    adapter = _adapter(airflow2_api, dag_ids=["interlock_api"])
    try:
        _, checkpoint, _ = _poll_all(adapter, None)
        run_id = f"bridge-test-{uuid.uuid4()}"
        api_request(
            airflow2_api,
            "POST",
            "/api/v1/dags/interlock_api/dagRuns",
            {"dag_run_id": run_id, "conf": {"day": "2026-11-24"}},
        )
        api_request(
            airflow2_api,
            "PATCH",
            f"/api/v1/dags/interlock_api/dagRuns/{run_id}",
            {"state": "failed"},
        )
        events, checkpoint, _ = _poll_all(adapter, checkpoint)
        again, _, _ = _poll_all(adapter, checkpoint)
    finally:
        adapter.close()
    # Never started (no scheduler here): no `running`, only the failure.
    assert [(event.event, event.payload["run_id"]) for event in events] == [
        ("airflow.dag_run.failed", run_id)
    ]
    assert again == []
    failed = events[0]
    assert failed.resource == {"id": "airflow.interlock_api", "dag_id": "interlock_api"}
    assert failed.payload["state"] == "failed"
    assert failed.payload["run_type"] == "manual"
    assert failed.payload["logical_date"] is not None  # v1 fills in the trigger time

    # Unlike Airflow 3's API server, Airflow 2's webserver calls no listener hook for a
    # run marked failed through the API: the bridge is the only source of this event.
    time.sleep(5)
    assert _events_of_run(airflow2_nats, run_id) == []
    _publish(airflow2_nats, tmp_path / "spool", events)
    assert [(event.id, event.source) for event in _events_of_run(airflow2_nats, run_id)] == [
        (failed.id, "adapter.airflow.rest")
    ]


def _events_of_run(nats_url: str, run_id: str) -> list[Event]:
    return [event for event in stored_events(nats_url) if event.payload.get("run_id") == run_id]


def test_bad_credentials_are_refused_without_showing_the_password(
    airflow2_api: ApiServer,
) -> None:
    adapter = _adapter(airflow2_api, password="not-the-password")
    try:
        with pytest.raises(SourceRefused) as caught:
            adapter.poll(None)
    finally:
        adapter.close()
    message = str(caught.value)
    assert "401" in message
    assert "/api/v1/" in message
    assert "check the username and password" in message
    assert "not-the-password" not in message


def test_the_v2_api_of_airflow_3_is_not_found_on_airflow_2(airflow2_api: ApiServer) -> None:
    """Airflow 2's webserver has no ``/auth/token``: the error says to check api_version."""
    adapter = _adapter(airflow2_api, api_version="v2")
    try:
        with pytest.raises(SourceRefused) as caught:
            adapter.poll(None)
    finally:
        adapter.close()
    message = str(caught.value)
    assert f"POST {airflow2_api.url}/auth/token: HTTP 404 (NOT FOUND; is {airflow2_api.url} " in (
        message
    )
    assert "an Airflow with the v2 API (v2: Airflow 3, v1: Airflow 2)?)" in message
    assert "<html" not in message  # not the webserver's error page
    assert PASSWORD not in message
