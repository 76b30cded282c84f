"""The Prefect → Interlock mapping, the checkpoint state and the connection, without a server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from interlock.adapters.base import AdapterConfigError
from interlock.adapters.prefect import (
    PrefectConnection,
    PrefectEventsAdapter,
    event_name,
    label_key,
    to_interlock,
)
from interlock.adapters.prefect._state import MAX_SEEN, StreamState
from interlock.sdk.codec import decode_event, encode_event

TWENTY = [f"t{i}" for i in range(20)]


@pytest.mark.parametrize(
    ("prefect", "interlock"),
    [
        ("prefect.flow-run.Completed", "prefect.flow-run.Completed"),
        ("prefect.task-run.AwaitingRetry", "prefect.task-run.AwaitingRetry"),
        ("acme.odd name!.done", "acme.odd_name_.done"),
        ("a..b.", "a.b"),
        ("...", "prefect.unnamed"),
        (".".join(TWENTY), ".".join(TWENTY[:15]) + ".t15_t16_t17_t18_t19"),
    ],
)
def test_event_names_are_kept_or_made_valid(prefect: str, interlock: str) -> None:
    assert event_name(prefect) == interlock


@pytest.mark.parametrize(
    ("prefect", "interlock"),
    [
        ("prefect.resource.id", "id"),
        ("prefect.resource.role", "role"),
        ("prefect.resource.name", "name"),
        ("prefect.state-name", "state_name"),
        ("prefect.work-pool.type", "work_pool_type"),
        ("team", "team"),
        ("prefect.", "prefect_"),
        ("", "_"),
    ],
)
def test_label_keys_become_dot_free_identifiers(prefect: str, interlock: str) -> None:
    assert label_key(prefect) == interlock


def prefect_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "occurred": "2026-11-24T14:15:58.989758Z",
        "event": "prefect.flow-run.Completed",
        "resource": {
            "prefect.resource.id": "prefect.flow-run.1",
            "prefect.resource.name": "brave-otter",
            "prefect.state-name": "Completed",
        },
        "related": [
            {
                "prefect.resource.id": "prefect.flow.9",
                "prefect.resource.role": "flow",
                "prefect.resource.name": "etl",
            },
        ],
        "payload": {"intended": {"from": "RUNNING", "to": "COMPLETED"}},
        "follows": None,
        "received": "2026-11-24T14:15:59Z",
    }
    return {**event, **overrides}


def test_a_flow_run_event_round_trips_the_wire_contract() -> None:
    source = prefect_event()
    event = to_interlock(source)
    assert str(event.id) == source["id"]
    assert event.occurred == datetime(2026, 11, 24, 14, 15, 58, 989758, tzinfo=UTC)
    assert event.resource == {
        "id": "prefect.flow-run.1",
        "name": "brave-otter",
        "state_name": "Completed",
    }
    assert event.related == [{"id": "prefect.flow.9", "role": "flow", "name": "etl"}]
    assert event.payload == source["payload"]
    stamped = msgspec.structs.replace(event, source="adapter.prefect.events")
    assert decode_event(encode_event(stamped)) == stamped


def test_colliding_label_keys_are_told_apart_the_same_way_every_time() -> None:
    resource = {"prefect.resource.id": "x", "a.b": "dotted", "a_b": "plain", "a-b": "dashed"}
    first = to_interlock(prefect_event(resource=resource)).resource
    again = to_interlock(prefect_event(resource=dict(reversed(resource.items())))).resource
    assert first == again
    assert first["a_b"] == "plain"  # a key that is already valid keeps its name
    assert sorted(v for k, v in first.items() if k.startswith("a_b_")) == ["dashed", "dotted"]


def test_related_without_a_role_gets_one() -> None:
    event = to_interlock(prefect_event(related=[{"prefect.resource.id": "r"}]))
    assert event.related == [{"id": "r", "role": "related"}]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"resource": {"prefect.resource.name": "x"}}, "has no 'prefect.resource.id'"),
        ({"id": "not-a-uuid"}, "bad or missing id/occurred"),
        ({"occurred": "2026-11-24T14:15:58"}, "UTC offset"),
        ({"payload": [1]}, "payload is not an object"),
    ],
)
def test_invalid_prefect_events_are_refused_with_the_reason(
    overrides: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        to_interlock(prefect_event(**overrides))


def test_the_state_resumes_before_the_newest_event_and_forgets_old_ids() -> None:
    start = datetime(2026, 11, 24, 9, tzinfo=UTC)
    state = StreamState()
    assert state.since(timedelta(minutes=1)) is None
    state.connected(start)
    state.add("early", start + timedelta(seconds=1))
    state.add("late", start + timedelta(minutes=5))
    state.trim(timedelta(minutes=1))
    restored = StreamState.from_checkpoint(
        msgspec.json.decode(msgspec.json.encode(state.to_checkpoint()))
    )
    assert restored.since(timedelta(minutes=1)) == start + timedelta(minutes=4)
    assert not restored.is_new("late")
    assert restored.is_new("early")  # older than any replay can send


def test_the_state_keeps_at_most_max_seen_ids() -> None:
    start = datetime(2026, 11, 24, 9, tzinfo=UTC)
    state = StreamState()
    for index in range(MAX_SEEN + 10):
        state.add(str(index), start + timedelta(microseconds=index))
    state.trim(timedelta(minutes=1))
    assert len(state.seen) == MAX_SEEN
    assert not state.is_new(str(MAX_SEEN + 9))


def test_a_checkpoint_of_another_kind_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not a prefect\.events checkpoint"):
        StreamState.from_checkpoint({"seen": [1, 2]})


def test_the_connection_shows_no_secret() -> None:
    connection = PrefectConnection(
        api_url="https://user:pw@prefect.example.com:4200/api", api_key="pnu_secret"
    )
    assert connection.origin == "https://prefect.example.com:4200"
    assert connection.events_url == "wss://prefect.example.com:4200/api/events/out"
    assert connection.headers() == {"Authorization": "Bearer pnu_secret"}
    assert "secret" not in repr(connection)
    assert "pw" not in repr(connection)
    basic = PrefectConnection(api_url="http://127.0.0.1:4200/api", auth_string="admin:pass")
    assert basic.headers() == {"Authorization": "Basic YWRtaW46cGFzcw=="}
    assert basic.events_url == "ws://127.0.0.1:4200/api/events/out"


def test_options_are_read_from_the_section_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("websockets", reason="the [prefect] extra's websockets is not installed")
    monkeypatch.setenv("INTERLOCK_PREFECT_API_URL", "http://127.0.0.1:4200/api")
    monkeypatch.setenv("MY_PREFECT_KEY", "pnu_x")
    adapter = PrefectEventsAdapter.from_options(
        "flows",
        {
            "prefixes": ["prefect.flow-run."],
            "api_key_env": "MY_PREFECT_KEY",
            "lookback": "2m",
            "wait": "500ms",
        },
    )
    assert adapter.connection.api_key == "pnu_x"
    assert adapter.prefixes == ("prefect.flow-run.",)
    assert adapter.lookback == timedelta(minutes=2)
    with pytest.raises(AdapterConfigError, match=r"prefixs: is not an option of 'prefect\.events'"):
        PrefectEventsAdapter.from_options("flows", {"prefixs": ["x"]})
    monkeypatch.delenv("INTERLOCK_PREFECT_API_URL")
    with pytest.raises(AdapterConfigError, match="INTERLOCK_PREFECT_API_URL"):
        PrefectEventsAdapter.from_options("flows", {})
