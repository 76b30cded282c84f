"""The ``prefect.events`` bridge against a real Prefect server, publishing to a real NATS.

Events are recorded in Prefect (``POST /api/events``, and a flow run created from a
deployment, which makes Prefect emit its own ``prefect.flow-run.*`` event), streamed by
the bridge under the adapter runner, and read back from JetStream. Each test filters on
its own event-name prefix, so tests sharing the server do not see each other's events.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from harness.nats import init_streams, stored_events
from integration.adapters.db_fixtures import publisher_config, wait_until
from integration.adapters.prefect.prefect_api import PrefectApi, prefect_event
from interlock.adapters.base import SourceRefused, SourceUnavailable
from interlock.adapters.checkpoints import FileCheckpointStore
from interlock.adapters.prefect import PrefectConnection, PrefectEventsAdapter
from interlock.adapters.runner import AdapterRunner
from interlock.sdk import SyncPublisher
from interlock.sdk.connections import ResolvedConnection
from interlock.service.adapter_connections import adapter_options

pytest.importorskip(
    "websockets",
    reason="the [prefect] extra's websockets is not installed in this environment",
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@contextmanager
def bridge(
    adapter: PrefectEventsAdapter, publisher: SyncPublisher, store: FileCheckpointStore
) -> Iterator[AdapterRunner]:
    """Run the adapter under the runner in a thread until the block ends."""
    runner = AdapterRunner(adapter, publisher, store, interval=timedelta(milliseconds=100))
    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            runner.run_forever(stop)
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    thread = threading.Thread(target=run, name=f"bridge-{adapter.name}")
    thread.start()
    try:
        wait_until(lambda: adapter.connections >= 1 or failures, 60, "the bridge to connect")
        assert not failures, failures
        yield runner
    finally:
        stop.set()
        thread.join(30)
        adapter.close()
    assert not failures, failures


def test_prefect_events_arrive_with_labels_related_payload_and_ids(
    prefect: PrefectConnection, nats_url: str, tmp_path: Path
) -> None:
    init_streams(nats_url)
    prefix = f"acme{uuid.uuid4().hex[:8]}"
    flow = f"{prefix}-flow"
    adapter = PrefectEventsAdapter(
        "prefect",
        connection=prefect,
        prefixes=(f"{prefix}.", "prefect.flow-run."),
        wait=timedelta(milliseconds=200),
    )
    with (
        PrefectApi(prefect) as api,
        SyncPublisher(publisher_config(nats_url, tmp_path)) as publisher,
        bridge(adapter, publisher, FileCheckpointStore(tmp_path / "checkpoints")),
    ):
        deployment_id = api.deployment(flow, "daily", {"day": "monday"})
        # Built once the bridge streams: Prefect sends only events that occurred after
        # the filter's `since` (on a first start, the time the bridge connected).
        custom = sales_refreshed(prefix)
        odd = prefect_event(f"{prefix}.odd name!.done", {"prefect.resource.id": "x"})
        api.emit(custom, odd)
        run = api.run_deployment(deployment_id)
        wanted = f"prefect.flow-run.{run['id']}"
        arrived: set[str] = set()

        def everything_arrived() -> bool:
            arrived.update(e.resource_id for e in stored_events(nats_url, timeout=1))
            return arrived >= {"warehouse.sales", "x", wanted}

        wait_until(everything_arrived, 60, f"{wanted} and the custom events in JetStream")
    events = stored_events(nats_url)
    by_id = {str(e.id): e for e in events}
    assert len(by_id) == len(events), "an event was stored twice"

    refreshed = by_id[custom["id"]]  # Prefect's id is the Interlock id
    assert refreshed.event == f"{prefix}.table.refreshed"
    assert refreshed.resource == {
        "id": "warehouse.sales",
        "name": "sales",
        "team": "finance",
        "a_b": "plain",
        refreshed_collision_key(refreshed.resource): "dotted",
    }
    assert refreshed.related == [
        {"id": "prefect.flow.1", "role": "flow", "name": "etl"},
        {"id": "prefect.tag.finance", "role": "tag"},
    ]
    assert refreshed.payload == {"rows": 1200, "nested": {"ok": True}}
    assert refreshed.occurred.isoformat().startswith(custom["occurred"][:19])
    assert refreshed.source == "adapter.test"

    assert by_id[odd["id"]].event == f"{prefix}.odd_name_.done"

    flow_run = next(e for e in events if e.resource_id == wanted)
    assert flow_run.event.startswith("prefect.flow-run.")
    assert flow_run.resource["name"] == run["name"]
    assert flow_run.resource["state_name"] == "Scheduled"
    roles = {item["role"]: item for item in flow_run.related}
    assert roles["flow"]["name"] == flow
    assert roles["deployment"]["id"] == f"prefect.deployment.{deployment_id}"


def sales_refreshed(prefix: str) -> dict[str, Any]:
    """A custom Prefect event with labels that need mapping and related resources."""
    return prefect_event(
        f"{prefix}.table.refreshed",
        {
            "prefect.resource.id": "warehouse.sales",
            "prefect.resource.name": "sales",
            "team": "finance",
            "a.b": "dotted",
            "a_b": "plain",
        },
        related=[
            {
                "prefect.resource.id": "prefect.flow.1",
                "prefect.resource.role": "flow",
                "prefect.resource.name": "etl",
            },
            {"prefect.resource.id": "prefect.tag.finance", "prefect.resource.role": "tag"},
        ],
        payload={"rows": 1200, "nested": {"ok": True}},
    )


def refreshed_collision_key(resource: dict[str, str]) -> str:
    """The label ``a.b`` got: ``a_b`` is taken by the key ``a_b``, so ``a_b_<8 hex>``."""
    (key,) = [k for k in resource if k.startswith("a_b_")]
    assert len(key) == len("a_b_") + 8
    return key


def test_a_restarted_bridge_resumes_from_its_checkpoint_without_duplicates(
    prefect: PrefectConnection, nats_url: str, tmp_path: Path
) -> None:
    init_streams(nats_url)
    prefix = f"acme{uuid.uuid4().hex[:8]}"
    store = FileCheckpointStore(tmp_path / "checkpoints")

    def adapter() -> PrefectEventsAdapter:
        return PrefectEventsAdapter(
            "prefect",
            connection=prefect,
            prefixes=(f"{prefix}.",),
            wait=timedelta(milliseconds=200),
        )

    def batch(tag: str, count: int) -> list[dict[str, Any]]:
        # Built when emitted: what Prefect replays is chosen by `occurred`.
        return [
            prefect_event(f"{prefix}.batch.done", {"prefect.resource.id": f"{tag}{i}"})
            for i in range(count)
        ]

    with (
        PrefectApi(prefect) as api,
        SyncPublisher(publisher_config(nats_url, tmp_path)) as publisher,
    ):
        first = adapter()
        with bridge(first, publisher, store) as runner:
            before = batch("before", 3)
            api.emit(*before)
            wait_until(lambda: runner.stats.events >= 3, 60, "the first bridge's events")
        assert store.load("prefect") is not None
        during = batch("during", 2)
        api.emit(*during)  # while no bridge runs
        # A reconnect replays what Prefect has persisted (its event persister flushes
        # every few seconds); what it has not persisted yet is in no replay.
        ids = [event["id"] for event in during]
        wait_until(lambda: api.recorded(ids) == set(ids), 60, "Prefect to persist the events")
        second = adapter()
        with bridge(second, publisher, store) as runner:
            after = batch("after", 2)
            api.emit(*after)
            wait_until(lambda: runner.stats.events >= 4, 60, "the events after the restart")
            # Prefect replays from the checkpoint minus the lookback: the first three
            # come again, and are dropped by id before publishing.
            wait_until(lambda: runner.stats.polls >= 5, 30, "a few more polls")
            assert runner.stats.events == 4
        assert second.connections == 1
    events = stored_events(nats_url, expected=7)
    counts = Counter(str(e.id) for e in events)
    assert set(counts) == {e["id"] for e in (*before, *during, *after)}
    assert set(counts.values()) == {1}


def test_a_dropped_connection_is_reported_then_resumed_without_duplicates(
    prefect: PrefectConnection,
) -> None:
    prefix = f"acme{uuid.uuid4().hex[:8]}"
    adapter = PrefectEventsAdapter(
        "prefect", connection=prefect, prefixes=(f"{prefix}.",), wait=timedelta(seconds=1)
    )

    def emitted(api: PrefectApi, tag: str) -> list[str]:
        events = [
            prefect_event(f"{prefix}.x", {"prefect.resource.id": f"{tag}{i}"}) for i in range(2)
        ]
        api.emit(*events)
        return [event["id"] for event in events]

    def drain(checkpoint: dict[str, Any] | None, count: int) -> tuple[list[str], dict[str, Any]]:
        ids: list[str] = []
        for _ in range(60):
            result = adapter.poll(checkpoint)
            checkpoint = result.checkpoint
            ids.extend(str(event.id) for event in result.events)
            if len(ids) >= count:
                break
        return ids, checkpoint or {}

    with PrefectApi(prefect) as api:
        checkpoint = adapter.poll(None).checkpoint  # connected
        sent = emitted(api, "a")
        first, checkpoint = drain(checkpoint, 2)
        assert sorted(first) == sorted(sent)
        assert adapter._socket is not None
        adapter._socket.close()  # the connection drops, as when a proxy cuts it
        missed = emitted(api, "b")
        wait_until(lambda: api.recorded(missed) == set(missed), 60, "Prefect to persist")
        with pytest.raises(SourceUnavailable, match="connection closed"):
            adapter.poll(checkpoint)
        again, _ = drain(checkpoint, 2)  # reconnects; the replay repeats `first`
    adapter.close()
    assert adapter.connections == 2
    assert sorted(again) == sorted(missed)


def test_wrong_credentials_are_refused(prefect: PrefectConnection) -> None:
    wrong = PrefectConnection(api_url=prefect.api_url, auth_string="interlock:wrong-secret")
    adapter = PrefectEventsAdapter("prefect", connection=wrong)
    with pytest.raises(SourceRefused, match="refused the credentials") as raised:
        adapter.poll(None)
    assert "wrong-secret" not in str(raised.value)
    adapter.close()


def test_a_server_that_is_down_is_unavailable_and_retried() -> None:
    down = PrefectConnection(api_url="http://127.0.0.1:9/api", auth_string="user:secret")
    adapter = PrefectEventsAdapter("prefect", connection=down, open_timeout=timedelta(seconds=2))
    for _ in range(2):  # each poll tries to connect again
        with pytest.raises(SourceUnavailable, match="connecting failed") as raised:
            adapter.poll(None)
        assert "secret" not in str(raised.value)
    assert adapter.connections == 0


def test_a_section_naming_a_prefect_connection_takes_its_url_and_auth_string(
    prefect: PrefectConnection,
) -> None:
    # What the service gives a `connection = "prod-prefect"` section: the connection's
    # URL and secret become the adapter's options (the section's own options win).
    def built(auth_string: str) -> PrefectEventsAdapter:
        resolved = ResolvedConnection(
            name="prod-prefect",
            kind="prefect",
            version=1,
            settings={"url": prefect.api_url},
            secrets={"auth_string": auth_string},
        )
        options = {"wait": "200ms", **adapter_options("prefect.events", resolved)}
        return PrefectEventsAdapter.from_options("prefect", options)

    assert prefect.auth_string is not None
    accepted = built(prefect.auth_string)
    try:
        accepted.poll(None)  # connects and authenticates; nothing happened yet
        assert accepted.connections == 1
    finally:
        accepted.close()
    refused = built("interlock:wrong-secret")
    with pytest.raises(SourceRefused, match="refused the credentials") as raised:
        refused.poll(None)
    assert "wrong-secret" not in str(raised.value)
    refused.close()
