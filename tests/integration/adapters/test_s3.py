"""S3 adapters against moto's real HTTP server (through boto3) and a real nats-server.

"Published once" is checked twice: by what the runner published (a repeat would show
there, although JetStream would drop it as a duplicate of the same id) and by what
JetStream stored. The checkpoint's pure logic (horizon, pruning mid-listing) and the
notification formats are also tested directly, with times and bodies spelled out.
"""

# The fixtures imported from s3_fixtures (moto_server, moto_url, s3, sqs) come back as
# test parameters of the same names, which pyflakes reads as redefinitions:
# ruff: noqa: F811

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.nats import init_streams, stored_events
from integration.adapters.s3_fixtures import (  # noqa: F401 - fixtures among them
    CREDENTIALS,
    REGION,
    client,
    credentials_checked,
    moto_server,
    moto_url,
    publisher_config,
    put_objects,
    run_until_caught_up,
    s3,
    s3_options,
    sqs,
)
from interlock.adapters.base import (
    AdapterConfigError,
    PollResult,
    SourceRefused,
    SourceUnavailable,
    deterministic_id,
)
from interlock.adapters.checkpoints import FileCheckpointStore
from interlock.adapters.runner import AdapterRunner
from interlock.adapters.s3 import S3NotificationAdapter, S3PollingAdapter
from interlock.adapters.s3._formats import NotificationFormatError, parse_notification
from interlock.adapters.s3._state import KeysCheckpoint, Listed, Scope, WatermarkCheckpoint
from interlock.sdk import SyncPublisher
from interlock.sdk.event import Event
from interlock.service.embedded_nats import EmbeddedNatsServer

BUCKET = "landing"


def md5(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()  # S3's ETag of a single-part upload


def poller(moto_url: str, **options: Any) -> S3PollingAdapter:
    return S3PollingAdapter.from_options(BUCKET, s3_options(moto_url, bucket=BUCKET, **options))


def consumer(moto_url: str, queue_url: str, **options: Any) -> S3NotificationAdapter:
    options.setdefault("wait_time", "0s")
    return S3NotificationAdapter.from_options(
        "landing-events", s3_options(moto_url, queue_url=queue_url, **options)
    )


def list_requests(adapter: S3PollingAdapter) -> list[dict[str, Any]]:
    """The parameters of every ListObjectsV2 request the adapter makes from now on."""
    seen: list[dict[str, Any]] = []
    adapter.client.meta.events.register(
        "before-parameter-build.s3.ListObjectsV2", lambda params, **_: seen.append(dict(params))
    )
    return seen


def keys_of(events: list[Event], name: str = "s3.object.created") -> list[str]:
    return sorted(event.payload["key"] for event in events if event.event == name)


# -- s3.poll ---------------------------------------------------------------------------


def test_1100_objects_are_published_once_across_pages_polls_and_a_restart(
    s3: Any, moto_url: str, nats_url: str, tmp_path: Path
) -> None:
    s3.create_bucket(Bucket=BUCKET)
    keys = [f"exports/{n:05d}.csv" for n in range(1100)]
    put_objects(s3, BUCKET, keys)
    init_streams(nats_url)
    store = FileCheckpointStore(tmp_path / "checkpoints")
    with SyncPublisher(publisher_config(nats_url, tmp_path)) as publisher:
        adapter = poller(moto_url, max_keys_per_poll=1050)
        requests = list_requests(adapter)
        first = AdapterRunner(adapter, publisher, store)
        assert first.run_once() is True  # stopped at max_keys_per_poll: more right away
        assert first.stats.events == 1050
        assert [r.get("ContinuationToken") is None for r in requests] == [True, False]
        checkpoint = store.load(BUCKET)
        assert checkpoint is not None
        assert checkpoint["cursor"] == keys[1049]
        adapter.close()

        # Restart mid-listing: a new adapter and runner resume after the saved cursor.
        adapter = poller(moto_url, max_keys_per_poll=1050)
        requests = list_requests(adapter)
        second = run_until_caught_up(adapter, publisher, tmp_path / "checkpoints")
        assert second.stats.events == 50
        assert requests[0]["StartAfter"] == keys[1049]
        while second.run_once():  # a full second listing (two polls) finds nothing new
            pass
        assert (second.stats.polls, second.stats.events) == (3, 50)

        s3.put_object(Bucket=BUCKET, Key="exports/99999.csv", Body=b"new")
        s3.put_object(Bucket=BUCKET, Key="exports/00007.csv", Body=b"changed")
        while second.run_once():
            pass
        assert second.stats.events == 52
        adapter.close()

    stored = stored_events(nats_url, expected=1102)
    assert len(stored) == 1102
    assert len({event.id for event in stored}) == 1102
    assert keys_of(stored) == sorted([*keys, "exports/00007.csv", "exports/99999.csv"])
    changed = next(e for e in stored if e.payload["etag"] == md5(b"changed"))
    assert changed.id == deterministic_id(BUCKET, "exports/00007.csv", md5(b"changed"))
    assert changed.resource == {"id": "s3://landing/exports/00007.csv", "bucket": BUCKET}
    assert changed.payload["size"] == 7
    assert datetime.fromisoformat(changed.payload["last_modified"]) == changed.occurred
    assert changed.source == "adapter.test"


@pytest.mark.parametrize("track", ["watermark", "keys"])
def test_a_restart_neither_misses_nor_repeats(
    track: str, s3: Any, moto_url: str, nats_url: str, tmp_path: Path
) -> None:
    s3.create_bucket(Bucket=BUCKET)
    put_objects(s3, BUCKET, ["a/1", "a/2", "a/3"])
    init_streams(nats_url)
    checkpoints = tmp_path / "checkpoints"
    with SyncPublisher(publisher_config(nats_url, tmp_path)) as publisher:
        adapter = poller(moto_url, track=track)
        assert run_until_caught_up(adapter, publisher, checkpoints).stats.events == 3
        adapter.close()
        # While it is down: new objects (most likely in the same second as the newest
        # one seen) and an overwritten one.
        put_objects(s3, BUCKET, ["a/4", "a/5"])
        s3.put_object(Bucket=BUCKET, Key="a/1", Body=b"version 2")
        adapter = poller(moto_url, track=track)
        restarted = run_until_caught_up(adapter, publisher, checkpoints)
        assert restarted.stats.events == 3
        assert restarted.run_once() is False
        assert restarted.stats.events == 3
        adapter.close()
    stored = stored_events(nats_url, expected=6)
    assert keys_of(stored) == ["a/1", "a/1", "a/2", "a/3", "a/4", "a/5"]


def test_prefix_and_glob_pattern_select_the_keys_and_narrow_the_listing(
    s3: Any, moto_url: str, nats_url: str, tmp_path: Path
) -> None:
    s3.create_bucket(Bucket=BUCKET)
    put_objects(
        s3,
        BUCKET,
        [
            "exports/fx/rates.csv",
            "exports/fx/rates.json",
            "exports/fx/2026/11/rates.csv",
            "exports/eq/prices.csv",
            "exportsx/fx/rates.csv",
            "imports/fx/rates.csv",
        ],
    )
    init_streams(nats_url)
    with SyncPublisher(publisher_config(nats_url, tmp_path)) as publisher:
        globbed = poller(moto_url, prefix="exports/", pattern="exports/fx/*.csv")
        requests = list_requests(globbed)
        run_until_caught_up(globbed, publisher, tmp_path / "globbed")
        assert {r["Prefix"] for r in requests} == {"exports/fx/"}  # the pattern's literal head
        # Like the rules' payload.key.glob(): `*` matches across `/`.
        assert keys_of(stored_events(nats_url, expected=2)) == [
            "exports/fx/2026/11/rates.csv",
            "exports/fx/rates.csv",
        ]
        prefixed = S3PollingAdapter.from_options(
            "prefixed", s3_options(moto_url, bucket=BUCKET, prefix="exports/")
        )
        assert run_until_caught_up(prefixed, publisher, tmp_path / "prefixed").stats.events == 4


def test_deletions_are_published_when_enabled_even_mid_listing(
    s3: Any, moto_url: str, nats_url: str, tmp_path: Path
) -> None:
    s3.create_bucket(Bucket=BUCKET)
    keys = [f"d/{n:02d}" for n in range(10)]
    put_objects(s3, BUCKET, keys, body=b"data")
    init_streams(nats_url)
    checkpoints = tmp_path / "checkpoints"
    with SyncPublisher(publisher_config(nats_url, tmp_path)) as publisher:
        # Three keys a poll: each deletion is found in the key range its poll listed.
        adapter = poller(moto_url, emit_deleted=True, max_keys_per_poll=3)
        runner = run_until_caught_up(adapter, publisher, checkpoints)
        assert (runner.stats.polls, runner.stats.events) == (4, 10)
        for key in ("d/00", "d/04", "d/09"):
            s3.delete_object(Bucket=BUCKET, Key=key)
        while runner.run_once():
            pass
        assert runner.stats.events == 13
        while runner.run_once():
            pass
        assert runner.stats.events == 13
        adapter.close()
    stored = stored_events(nats_url, expected=13)
    deleted = [event for event in stored if event.event == "s3.object.deleted"]
    assert keys_of(deleted, "s3.object.deleted") == ["d/00", "d/04", "d/09"]
    for event in deleted:
        key = event.payload["key"]
        assert event.id == deterministic_id(BUCKET, key, md5(b"data"), "deleted")
        assert event.resource == {"id": f"s3://landing/{key}", "bucket": BUCKET}
        assert event.payload == {"key": key, "etag": md5(b"data")}


def test_existing_objects_can_be_skipped_on_the_first_poll(
    s3: Any, moto_url: str, nats_url: str, tmp_path: Path
) -> None:
    s3.create_bucket(Bucket=BUCKET)
    put_objects(s3, BUCKET, ["old/1", "old/2"])
    init_streams(nats_url)
    with SyncPublisher(publisher_config(nats_url, tmp_path)) as publisher:
        adapter = poller(moto_url, emit_existing=False, max_keys_per_poll=1)
        runner = run_until_caught_up(adapter, publisher, tmp_path / "checkpoints")
        assert (runner.stats.polls, runner.stats.events) == (2, 0)
        s3.put_object(Bucket=BUCKET, Key="new/1", Body=b"x")
        while runner.run_once():
            pass
        assert runner.stats.events == 1
    assert keys_of(stored_events(nats_url, expected=1)) == ["new/1"]


def test_a_checkpoint_of_another_listing_is_refused(s3: Any, moto_url: str) -> None:
    s3.create_bucket(Bucket=BUCKET)
    checkpoint = poller(moto_url, prefix="a/").poll(None).checkpoint
    with pytest.raises(AdapterConfigError) as caught:
        poller(moto_url, prefix="b/").poll(checkpoint)
    assert caught.value.setting == "adapter 'landing': checkpoint"
    assert "delete this adapter's checkpoint file" in str(caught.value)
    with pytest.raises(AdapterConfigError):
        poller(moto_url, prefix="a/", emit_deleted=True).poll(checkpoint)


def test_a_missing_bucket_is_refused_with_the_s3_error_code(moto_url: str) -> None:
    with pytest.raises(SourceRefused) as caught:
        poller(moto_url).poll(None)
    assert isinstance(caught.value, PermissionError)
    assert "NoSuchBucket" in caught.value.reason
    assert "s3://landing/" in caught.value.reason


def test_bad_credentials_are_refused_with_the_error_code(s3: Any, sqs: Any, moto_url: str) -> None:
    s3.create_bucket(Bucket=BUCKET)
    queue_url, _ = create_queue(sqs)
    with credentials_checked(moto_url):
        with pytest.raises(SourceRefused, match="InvalidAccessKeyId"):
            poller(moto_url).poll(None)
        with pytest.raises(SourceRefused, match="InvalidClientTokenId"):
            consumer(moto_url, queue_url).poll(None)


def test_an_unreachable_endpoint_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = S3PollingAdapter.from_options(
        BUCKET,
        {
            "bucket": BUCKET,
            "endpoint_url": f"http://127.0.0.1:{port}",
            "region": REGION,
            "max_attempts": 1,
            "timeout": "2s",
            **CREDENTIALS,
        },
    )
    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as caught:
        adapter.poll(None)
    assert isinstance(caught.value, ConnectionError)
    assert f"127.0.0.1:{port}" in caught.value.reason
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({}, "bucket"),
        ({"bucket": BUCKET, "buckt": "typo"}, "buckt"),
        ({"bucket": BUCKET, "track": "all"}, "track"),
        ({"bucket": BUCKET, "emit_deleted": True, "track": "watermark"}, "emit_deleted"),
        ({"bucket": BUCKET, "emit_deleted": "yes"}, "emit_deleted"),
        ({"bucket": BUCKET, "max_keys_per_poll": 0}, "max_keys_per_poll"),
        ({"bucket": BUCKET, "prefix": "a/", "pattern": "b/*.csv"}, "pattern"),
        ({"bucket": BUCKET, "lookback": "soon"}, "lookback"),
        ({"bucket": BUCKET, "aws_access_key_id": "AKIA"}, "aws_access_key_id"),
        ({"bucket": BUCKET, "endpoint_url": "localhost:9000"}, "endpoint_url"),
        ({"bucket": BUCKET, "addressing_style": "dns"}, "addressing_style"),
        ({"bucket": BUCKET, "max_attempts": 0}, "max_attempts"),
    ],
)
def test_invalid_poll_options_are_named(options: dict[str, Any], option: str) -> None:
    with pytest.raises(AdapterConfigError) as caught:
        S3PollingAdapter.from_options("landing", options)
    assert caught.value.setting == f"adapter 'landing': {option}"


def test_interlock_adapter_run_once_from_a_config_file(
    s3: Any, moto_url: str, nats_url: str, tmp_path: Path
) -> None:
    s3.create_bucket(Bucket=BUCKET)
    put_objects(s3, BUCKET, ["in/1.csv", "in/2.csv", "in/3.csv"])
    init_streams(nats_url)
    config = tmp_path / "interlock.toml"
    config.write_text(
        f"""
        [nats]
        url = "{nats_url}"
        spool_dir = "{tmp_path / "spool"}"

        [adapters.landing]
        kind = "s3.poll"
        interval = "1m"
        checkpoint_dir = "{tmp_path / "checkpoints"}"
        bucket = "{BUCKET}"
        pattern = "in/*.csv"
        max_keys_per_poll = 2
        endpoint_url = "{moto_url}"
        region = "{REGION}"
        aws_access_key_id = "testing"
        aws_secret_access_key = "testing"
        """.replace("\n        ", "\n")
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "INTERLOCK_"))}
    command = [sys.executable, "-m", "interlock.sdk.cli", "adapter", "run", "landing"]
    command += ["--config", str(config), "--once"]

    done = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "landing: 2 poll(s), 3 event(s), 0 spooled"  # 2 keys a poll
    stored = stored_events(nats_url, expected=3)
    assert keys_of(stored) == ["in/1.csv", "in/2.csv", "in/3.csv"]
    assert {event.source for event in stored} == {"adapter.s3.poll"}
    checkpoint = FileCheckpointStore(tmp_path / "checkpoints").load("landing")
    assert checkpoint is not None
    assert (checkpoint["cursor"], checkpoint["primed"]) == (None, True)


# -- the watermark checkpoint, in spelled-out time ---------------------------------------

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def listed(key: str, minutes: float, etag: str = "e1") -> Listed:
    return Listed(key=key, etag=etag, size=1, last_modified=T0 + timedelta(minutes=minutes))


def listing(
    state: WatermarkCheckpoint,
    items: list[Listed],
    lookback: timedelta,
    cursor: str | None = None,
    *,
    started: float | None = None,
) -> list[str]:
    """One poll: lists ``items`` up to ``cursor``; ``started`` (minute) begins a listing."""
    if started is not None:
        state.start_listing(T0 + timedelta(minutes=started))
    found = [item.key for item in items if state.observe(item)]
    state.finish(cursor, lookback)
    return found


def test_the_horizon_catches_late_visible_uploads_within_the_lookback() -> None:
    lookback = timedelta(minutes=15)
    state = WatermarkCheckpoint(scope=Scope(bucket=BUCKET, prefix="", pattern=None))
    items = [listed("a", 0), listed("b", 30)]
    assert listing(state, items, lookback, started=31) == ["a", "b"]
    assert state.horizon == T0 + timedelta(minutes=16)  # the listing's start - lookback
    assert set(state.recent) == {"b"}  # "a" is older than the horizon: forgotten
    # A multipart upload begun at minute 20 shows up now: caught. One whose
    # LastModified is older than the horizon is not (the documented limit).
    items += [listed("late", 20), listed("later", 10)]
    assert listing(state, items, lookback, started=40) == ["late"]
    changed = [*items, listed("b", 30, etag="e2")]
    assert listing(state, changed, lookback, started=45) == ["b"]


def test_pruning_mid_listing_never_forgets_keys_still_to_be_listed() -> None:
    lookback = timedelta(0)
    state = WatermarkCheckpoint(scope=Scope(bucket=BUCKET, prefix="", pattern=None))
    first = [listed("a", 0), listed("m", 5), listed("z", 5)]
    assert listing(state, first, lookback, started=5) == ["a", "m", "z"]
    assert set(state.recent) == {"m", "z"}
    # Next listing, in two polls: "a" (changed) first, then "m" and "z" unchanged.
    assert listing(state, [listed("a", 10, etag="e2")], lookback, "a", started=10) == ["a"]
    assert set(state.recent) == {"a", "m", "z"}  # m and z come after the cursor: kept
    assert listing(state, [listed("m", 5), listed("z", 5)], lookback) == []
    assert set(state.recent) == {"a"}


def test_an_object_written_behind_the_cursor_is_found_by_the_next_listing() -> None:
    lookback = timedelta(0)
    state = WatermarkCheckpoint(scope=Scope(bucket=BUCKET, prefix="", pattern=None))
    assert listing(state, [listed("a", 0)], lookback, "a", started=0) == ["a"]
    # "a" is overwritten at minute 0 (behind the cursor); "b" is written at minute 1.
    assert listing(state, [listed("b", 1)], lookback) == ["b"]
    assert listing(state, [listed("a", 0, etag="e2"), listed("b", 1)], lookback, started=2) == ["a"]


def test_the_same_content_uploaded_again_is_not_reported_again() -> None:
    lookback = timedelta(minutes=15)
    state = WatermarkCheckpoint(scope=Scope(bucket=BUCKET, prefix="", pattern=None))
    assert listing(state, [listed("a", 0)], lookback, started=1) == ["a"]
    assert listing(state, [listed("a", 60)], lookback, started=61) == []  # same ETag, later
    items = [listed("a", 60), listed("b", 120)]
    assert listing(state, items, lookback, started=121) == ["b"]
    assert listing(state, items, lookback, started=122) == []


Operation = tuple[str, str, int]  # ("put", key, 0) or ("poll", "", keys per poll)

operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from("abcde"), st.just(0)),
        st.tuples(st.just("poll"), st.just(""), st.integers(1, 4)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(operations, st.lists(st.integers(0, 2), min_size=40, max_size=40))
def test_without_deletions_the_watermark_reports_what_the_key_map_reports(
    script: list[Operation], ticks: list[int]
) -> None:
    """Same-minute writes, overwrites and listings spanning polls, in any interleaving.

    With ``lookback = 0`` and uploads visible at once, the bounded watermark reports
    exactly the versions the exact key map reports: nothing missed, nothing twice.
    """
    scope = Scope(bucket=BUCKET, prefix="", pattern=None)
    states = {"watermark": WatermarkCheckpoint(scope=scope), "keys": KeysCheckpoint(scope=scope)}
    bucket: dict[str, Listed] = {}
    reported: dict[str, list[tuple[str, str]]] = {"watermark": [], "keys": []}
    minute = 0
    for index, ((action, key, value), tick) in enumerate(zip(script, ticks, strict=False)):
        minute += tick
        if action == "put":
            # New content every time: writing back content a key once had is reported
            # again by the watermark once the key is older than the lookback (same
            # event id), never by the key map; the documented difference, not tested.
            bucket[key] = listed(key, minute, etag=f"v{index}")
            continue
        for name, state in states.items():
            if state.cursor is None:
                state.start_listing(T0 + timedelta(minutes=minute))
            page = sorted(k for k in bucket if state.cursor is None or k > state.cursor)
            chunk = page[:value]
            cursor = chunk[-1] if len(page) > value else None
            found = [bucket[k] for k in chunk if state.observe(bucket[k])]
            state.finish(cursor, timedelta(0))
            reported[name].extend((item.key, item.etag) for item in found)
    assert reported["watermark"] == reported["keys"]


# -- s3.sqs ------------------------------------------------------------------------------

S3_RECORD_ETAG = "b1946ac92492d2347c6235b4d2611184"
S3_RECORD = {
    "eventVersion": "2.1",
    "eventSource": "aws:s3",
    "awsRegion": "us-west-2",
    "eventTime": "2026-11-24T09:00:00.000Z",
    "eventName": "ObjectCreated:Put",
    "s3": {
        "s3SchemaVersion": "1.0",
        "configurationId": "landing",
        "bucket": {"name": BUCKET, "arn": "arn:aws:s3:::landing"},
        "object": {
            "key": "in/red+flower%281%29.jpg",
            "size": 5,
            "eTag": S3_RECORD_ETAG,
            "sequencer": "0055AED6DCD90281E5",
        },
    },
}
EVENTBRIDGE = {
    "version": "0",
    "id": "17793124-05d4-b198-2fde-7ededc63b103",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "111122223333",
    "time": "2026-11-24T09:00:00Z",
    "region": "us-west-2",
    "resources": ["arn:aws:s3:::landing"],
    "detail": {
        "version": "0",
        "bucket": {"name": BUCKET},
        "object": {
            "key": "in/red flower(1).jpg",
            "size": 5,
            "etag": S3_RECORD_ETAG,
            "sequencer": "617f08299329d189",
        },
        "reason": "PutObject",
    },
}


def test_both_formats_and_an_sns_envelope_give_the_same_event() -> None:
    from_s3 = parse_notification(json.dumps({"Records": [S3_RECORD]}))
    from_eventbridge = parse_notification(json.dumps(EVENTBRIDGE))
    envelope = {"Type": "Notification", "Message": json.dumps({"Records": [S3_RECORD]})}
    from_sns = parse_notification(json.dumps(envelope))
    assert [e.id for e in from_s3] == [e.id for e in from_eventbridge] == [e.id for e in from_sns]
    (event,) = from_s3
    assert event.id == deterministic_id(BUCKET, "in/red flower(1).jpg", S3_RECORD_ETAG)
    assert event.event == "s3.object.created"
    assert event.resource == {"id": "s3://landing/in/red flower(1).jpg", "bucket": BUCKET}
    assert event.occurred == datetime(2026, 11, 24, 9, tzinfo=UTC)
    assert event.payload == {
        "key": "in/red flower(1).jpg",
        "size": 5,
        "etag": S3_RECORD_ETAG,
        "sequencer": "0055AED6DCD90281E5",
        "reason": "ObjectCreated:Put",
    }


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"hello": "world"}', "neither an S3 event notification"),
        ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "s3 is missing"),
        (json.dumps({**EVENTBRIDGE, "time": "yesterday"}), "time is not a time"),
    ],
)
def test_unreadable_messages_say_why(body: str, problem: str) -> None:
    with pytest.raises(NotificationFormatError, match=problem):
        parse_notification(body)


def test_other_notifications_are_understood_and_ignored() -> None:
    restore = {**S3_RECORD, "eventName": "ObjectRestore:Completed"}
    assert parse_notification(json.dumps({"Records": [restore]})) == []
    assert parse_notification(json.dumps({**EVENTBRIDGE, "detail-type": "Object Tags Added"})) == []
    assert parse_notification('{"Service": "Amazon S3", "Event": "s3:TestEvent"}') == []


def create_queue(sqs: Any, name: str = "landing-events") -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, attributes["Attributes"]["QueueArn"]


def queue_depth(sqs: Any, queue_url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)
    return sum(int(attributes["Attributes"][name]) for name in names)


def test_s3_notifications_become_events_and_leave_the_queue_once_published(
    s3: Any, sqs: Any, moto_url: str, nats_url: str, tmp_path: Path
) -> None:
    queue_url, queue_arn = create_queue(sqs)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}
            ]
        },
    )  # S3 also sends an s3:TestEvent: understood, deleted, no event
    s3.put_object(Bucket=BUCKET, Key="in/red flower+1.csv", Body=b"hello")
    s3.put_object(Bucket=BUCKET, Key="in/é/ü.csv", Body=b"x")
    s3.delete_object(Bucket=BUCKET, Key="in/é/ü.csv")
    init_streams(nats_url)
    with SyncPublisher(publisher_config(nats_url, tmp_path)) as publisher:
        adapter = consumer(moto_url, queue_url)
        runner = run_until_caught_up(adapter, publisher, tmp_path / "checkpoints")
        assert runner.stats.events == 3
        assert queue_depth(sqs, queue_url) == 0
        # The poller sees the same object version: same id, so JetStream keeps one.
        listing = poller(moto_url)
        assert run_until_caught_up(listing, publisher, tmp_path / "poller").stats.events == 1
    stored = stored_events(nats_url, expected=3)
    assert len(stored) == 3
    assert keys_of(stored) == ["in/red flower+1.csv", "in/é/ü.csv"]
    assert keys_of(stored, "s3.object.deleted") == ["in/é/ü.csv"]
    created = next(e for e in stored if e.payload["key"] == "in/red flower+1.csv")
    assert created.id == deterministic_id(BUCKET, "in/red flower+1.csv", md5(b"hello"))
    assert created.payload["reason"] == "ObjectCreated:Put"


def test_eventbridge_notifications_become_events(
    s3: Any, sqs: Any, moto_url: str, nats_url: str, tmp_path: Path
) -> None:
    queue_url, queue_arn = create_queue(sqs)
    events = client("events", moto_url)
    events.put_rule(Name="s3-to-sqs", EventPattern=json.dumps({"source": ["aws.s3"]}))
    events.put_targets(Rule="s3-to-sqs", Targets=[{"Id": "queue", "Arn": queue_arn}])
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    s3.put_object(Bucket=BUCKET, Key="eb/a b.csv", Body=b"hello")
    s3.delete_object(Bucket=BUCKET, Key="eb/a b.csv")
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(EVENTBRIDGE))  # AWS's sample
    init_streams(nats_url)
    with SyncPublisher(publisher_config(nats_url, tmp_path)) as publisher:
        runner = run_until_caught_up(consumer(moto_url, queue_url), publisher, tmp_path / "c")
        assert runner.stats.events == 3
    assert queue_depth(sqs, queue_url) == 0
    stored = stored_events(nats_url, expected=3)
    assert keys_of(stored) == ["eb/a b.csv", "in/red flower(1).jpg"]
    assert keys_of(stored, "s3.object.deleted") == ["eb/a b.csv"]
    sample = next(e for e in stored if e.payload["key"] == "in/red flower(1).jpg")
    assert sample.payload["reason"] == "PutObject"
    assert sample.occurred == datetime(2026, 11, 24, 9, tzinfo=UTC)


class FailingPublisher:
    def publish_many(self, events: list[Event]) -> None:
        raise RuntimeError("publishing failed")


def test_a_message_stays_on_the_queue_when_publishing_fails(
    sqs: Any, moto_url: str, nats_url: str, tmp_path: Path
) -> None:
    queue_url, _ = create_queue(sqs)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": [S3_RECORD]}))
    adapter = consumer(moto_url, queue_url, visibility_timeout="1s")
    store = FileCheckpointStore(tmp_path / "checkpoints")
    failing = AdapterRunner(adapter, FailingPublisher(), store)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="publishing failed"):
        failing.run_once()
    assert queue_depth(sqs, queue_url) == 1
    time.sleep(1.2)  # the visibility timeout: SQS delivers it again
    init_streams(nats_url)
    with SyncPublisher(publisher_config(nats_url, tmp_path)) as publisher:
        runner = run_until_caught_up(adapter, publisher, tmp_path / "checkpoints")
        assert runner.stats.events == 1
    assert queue_depth(sqs, queue_url) == 0
    assert keys_of(stored_events(nats_url, expected=1)) == ["in/red flower(1).jpg"]


def test_with_nats_down_events_are_spooled_then_the_message_deleted(
    sqs: Any, moto_url: str, nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    url = nats_server.url
    init_streams(url)
    nats_server.stop()
    queue_url, _ = create_queue(sqs)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": [S3_RECORD]}))
    with SyncPublisher(publisher_config(url, tmp_path, timeout=0.5)) as publisher:
        runner = run_until_caught_up(consumer(moto_url, queue_url), publisher, tmp_path / "c")
        assert (runner.stats.events, runner.stats.spooled) == (1, 1)
        assert queue_depth(sqs, queue_url) == 0  # safe: the event is on disk
        nats_server.start()
        assert publisher.flush(timeout=20)
    assert keys_of(stored_events(url, expected=1)) == ["in/red flower(1).jpg"]


def test_unreadable_messages_are_left_on_the_queue_with_a_warning(
    sqs: Any, moto_url: str, nats_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue_url, _ = create_queue(sqs)
    for body in ("not json", '{"hello": "world"}', json.dumps({"Records": [S3_RECORD]})):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    init_streams(nats_url)
    adapter = consumer(moto_url, queue_url, visibility_timeout="1s")
    with (
        caplog.at_level(logging.WARNING, logger="interlock.adapters.s3"),
        SyncPublisher(publisher_config(nats_url, tmp_path)) as publisher,
    ):
        runner = run_until_caught_up(adapter, publisher, tmp_path / "checkpoints")
        assert runner.stats.events == 1
    warnings = [r.getMessage() for r in caplog.records if "leaving message" in r.getMessage()]
    assert len(warnings) == 2
    assert any("not JSON" in w for w in warnings)
    assert any("neither an S3 event notification" in w for w in warnings)
    time.sleep(1.2)
    left = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert sorted(m["Body"] for m in left) == ["not json", '{"hello": "world"}']
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in left} == {"2"}


def test_a_missing_queue_is_refused(sqs: Any, moto_url: str) -> None:
    queue_url, _ = create_queue(sqs)
    with pytest.raises(SourceRefused, match="NonExistentQueue"):
        consumer(moto_url, queue_url + "-missing").poll(None)


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({}, "queue_url"),
        ({"queue_url": "landing-events"}, "queue_url"),
        ({"queue_url": "https://sqs.eu-west-1.amazonaws.com/1/q", "wait_time": "30s"}, "wait_time"),
        ({"queue_url": "https://sqs.eu-west-1.amazonaws.com/1/q", "prefix": "a/"}, "prefix"),
        ({"queue_url": "http://127.0.0.1:1/1/q"}, "region"),
    ],
)
def test_invalid_queue_options_are_named(
    options: dict[str, Any], option: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(AdapterConfigError) as caught:
        S3NotificationAdapter.from_options("landing-events", options)
    assert caught.value.setting == f"adapter 'landing-events': {option}"


def test_the_region_is_read_from_an_aws_queue_url() -> None:
    adapter = S3NotificationAdapter.from_options(
        "q", {"queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/q", **CREDENTIALS}
    )
    assert adapter.client.meta.region_name == "eu-west-1"


def test_poll_results_carry_receipts_only_for_messages_read(sqs: Any, moto_url: str) -> None:
    queue_url, _ = create_queue(sqs)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": [S3_RECORD]}))
    sqs.send_message(QueueUrl=queue_url, MessageBody="not json")
    result: PollResult = consumer(moto_url, queue_url).poll(None)
    assert len(result.events) == 1
    assert len(result.receipts) == 1
