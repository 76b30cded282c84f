"""``airflow.rest`` against a real ``airflow api-server``: the plugin's events, the same ids.

The runs ``interlock_ok`` and ``interlock_fail`` were made by ``airflow dags test`` with
the plugin loaded (``conftest.py``); the bridge finds them through the API and must
publish the same ids, so JetStream stores each change once.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from harness.nats import stored_events
from harness.ports import free_port
from integration.adapters.airflow.airflow_env import (
    PASSWORD,
    USERNAME,
    ApiServer,
    DagTests,
    api_request,
)
from interlock.adapters.airflow.bridge import AirflowRestAdapter
from interlock.adapters.base import AdapterConfigError, SourceRefused, SourceUnavailable
from interlock.adapters.checkpoints import FileCheckpointStore
from interlock.adapters.config import adapter_kind, load_adapter_section
from interlock.adapters.runner import AdapterRunner
from interlock.sdk import Event, NatsOptions, PublisherConfig, SyncPublisher

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PLUGIN_DAGS = ("interlock_ok", "interlock_fail")


def _adapter(server: ApiServer, **options: Any) -> AirflowRestAdapter:
    adapter = adapter_kind("airflow.rest", "airflow-test").from_options(
        "airflow-test",
        {"url": server.url, "username": USERNAME, "password": PASSWORD, **options},
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
    dag_tests: DagTests, airflow_api: ApiServer, airflow_nats: str, tmp_path: Path
) -> None:
    assert dag_tests.results["interlock_ok"].returncode == 0
    adapter = _adapter(airflow_api, lookback="1h", dag_ids=list(PLUGIN_DAGS))
    try:
        events, checkpoint, _ = _poll_all(adapter, None)
        again, _, _ = _poll_all(adapter, checkpoint)
    finally:
        adapter.close()
    assert {event.payload["dag_id"] for event in events} == set(PLUGIN_DAGS)
    assert again == []  # a re-poll publishes nothing new

    plugin = [
        event
        for event in stored_events(airflow_nats, expected=8)
        if event.payload.get("dag_id") in PLUGIN_DAGS and event.source.endswith("listener")
    ]
    assert len(plugin) == 8
    by_id = {event.id: event for event in events}
    for mine in plugin:
        theirs = by_id.get(mine.id)
        assert theirs is not None, f"the bridge has no {mine.event} {mine.resource}"
        assert theirs.event == mine.event
        assert theirs.resource == mine.resource
        for field in ("run_id", "logical_date", "start_date", "try_number", "state"):
            assert theirs.payload.get(field) == mine.payload.get(field), field
        # A task's end: the worker's clock in the plugin, the API server's in Airflow's
        # database (they differ by milliseconds for a failed try).
        assert abs((theirs.occurred - mine.occurred).total_seconds()) < 5
    # `dags test` calls no on_dag_run_running; the bridge sees the runs' start.
    extra = sorted(event.event for event in events if event.id not in {e.id for e in plugin})
    assert extra == ["airflow.dag_run.running", "airflow.dag_run.running"]

    _publish(airflow_nats, tmp_path / "spool", events)
    stored = [
        event
        for event in stored_events(airflow_nats, expected=10)
        if event.payload.get("dag_id") in PLUGIN_DAGS
    ]
    assert len(stored) == 10  # 8 from the plugin + 2 runs' `running`: nothing twice
    assert len({event.id for event in stored}) == 10


def test_pages_and_a_listing_spread_over_several_polls_find_the_same_events(
    dag_tests: DagTests, airflow_api: ApiServer
) -> None:
    assert dag_tests.results["interlock_ok"].returncode == 0
    whole = _adapter(airflow_api, lookback="1h", dag_ids=list(PLUGIN_DAGS))
    paged = _adapter(
        airflow_api, lookback="1h", dag_ids=list(PLUGIN_DAGS), page_size=1, max_items_per_poll=1
    )
    try:
        expected, _, _ = _poll_all(whole, None)
        events, _, polls = _poll_all(paged, None)
    finally:
        whole.close()
        paged.close()
    assert polls > 3
    assert sorted(str(event.id) for event in events) == sorted(str(event.id) for event in expected)


def test_a_run_changed_through_the_api_after_the_checkpoint_is_the_only_new_event(
    airflow_api: ApiServer, airflow_nats: str, tmp_path: Path
) -> None:
    adapter = _adapter(airflow_api, dag_ids=["interlock_api"])
    try:
        _, checkpoint, _ = _poll_all(adapter, None)
        run_id = f"bridge-test-{uuid.uuid4()}"
        api_request(
            airflow_api,
            "POST",
            "/api/v2/dags/interlock_api/dagRuns",
            {"dag_run_id": run_id, "logical_date": None, "conf": {"day": "2026-11-24"}},
        )
        api_request(
            airflow_api,
            "PATCH",
            f"/api/v2/dags/interlock_api/dagRuns/{run_id}",
            {"state": "failed"},
        )
        events, checkpoint, _ = _poll_all(adapter, checkpoint)
        again, _, _ = _poll_all(adapter, checkpoint)
    finally:
        adapter.close()
    assert [(event.event, event.payload["run_id"]) for event in events] == [
        ("airflow.dag_run.failed", run_id)
    ]
    assert again == []
    failed = events[0]
    assert failed.resource == {"id": "airflow.interlock_api", "dag_id": "interlock_api"}
    assert failed.payload["state"] == "failed"
    assert failed.payload["run_type"] == "manual"

    # The API server runs the plugin too: its on_dag_run_failed published the same id
    # (spooled first if its connection was slow: wait for it).
    deadline = time.monotonic() + 60
    while not (stored := _events_of_run(airflow_nats, run_id)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [(event.id, event.source) for event in stored] == [
        (failed.id, "adapter.airflow.listener")
    ]
    _publish(airflow_nats, tmp_path / "spool", events)
    assert [event.id for event in _events_of_run(airflow_nats, run_id)] == [failed.id]


def _events_of_run(nats_url: str, run_id: str) -> list[Event]:
    return [event for event in stored_events(nats_url) if event.payload.get("run_id") == run_id]


def test_bad_credentials_are_refused_without_showing_the_password(
    airflow_api: ApiServer,
) -> None:
    adapter = _adapter(airflow_api, password="not-the-password")
    try:
        with pytest.raises(SourceRefused) as caught:
            adapter.poll(None)
    finally:
        adapter.close()
    message = str(caught.value)
    assert "401" in message
    assert "airflow-test" in message
    assert "check the username and password" in message
    assert "not-the-password" not in message


def test_the_v1_api_of_airflow_2_is_not_found_on_airflow_3(airflow_api: ApiServer) -> None:
    adapter = _adapter(airflow_api, api_version="v1")
    try:
        with pytest.raises(SourceRefused, match=r"HTTP 404.*v1 API"):
            adapter.poll(None)
    finally:
        adapter.close()


def test_an_unreachable_airflow_is_unavailable_and_retried() -> None:
    adapter = AirflowRestAdapter.from_options(
        "airflow-down",
        {"url": f"http://127.0.0.1:{free_port()}", "token": "secret-token", "timeout": "2s"},
    )
    try:
        with pytest.raises(SourceUnavailable, match="cannot connect") as caught:
            adapter.poll(None)
    finally:
        adapter.close()
    assert "secret-token" not in str(caught.value)


def test_a_checkpoint_of_another_airflow_is_refused(airflow_api: ApiServer) -> None:
    adapter = _adapter(airflow_api)
    try:
        with pytest.raises(AdapterConfigError, match="delete this adapter's checkpoint"):
            adapter.poll({"version": 1, "url": "http://elsewhere:8080", "seen": {}})
    finally:
        adapter.close()


def test_runs_from_a_toml_section_with_a_saved_checkpoint(
    dag_tests: DagTests,
    airflow_api: ApiServer,
    airflow_nats: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``interlock adapter run``'s path: the section, the runner, the checkpoint file."""
    monkeypatch.setenv("INTERLOCK_TEST_AIRFLOW_PASSWORD", PASSWORD)
    config = tmp_path / "adapters.toml"
    config.write_text(
        f"""
[nats]
url = "{airflow_nats}"
spool_dir = "{tmp_path / "spool"}"

[adapters.airflow]
kind = "airflow.rest"
checkpoint_dir = "{tmp_path / "checkpoints"}"
url = "{airflow_api.url}"
username = "{USERNAME}"
password_env = "INTERLOCK_TEST_AIRFLOW_PASSWORD"
dag_ids = ["interlock_ok"]
lookback = "1h"
"""
    )
    section = load_adapter_section(config, "airflow")
    with SyncPublisher(section.publisher) as publisher:
        runner = AdapterRunner(
            section.adapter, publisher, FileCheckpointStore(section.checkpoint_dir)
        )
        try:
            while runner.run_once():
                pass
            first = runner.stats.events
            runner.run_once()
        finally:
            section.adapter.close()
    assert first == 6  # the run's running and succeeded, two tasks' running and succeeded
    assert runner.stats.events == first  # the saved checkpoint: nothing again
    assert (section.checkpoint_dir / "airflow.json").exists()
    assert section.publisher.source == "adapter.airflow.rest"
