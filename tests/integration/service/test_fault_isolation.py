"""Nothing a producer, a rule author or an action sends stops the service (issue 14).

A real ``Service`` on a real nats-server and SQLite, fed raw messages with nats-py as a
hostile producer would send them: every invalid one lands in ``INTERLOCK_DEAD`` with a
reason naming the exception, every valid one is acted on exactly once, and the service
keeps running. Rules that can no longer be built are quarantined at start; a template
that fails at render fails its action only.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from nats.js import JetStreamContext

from harness.nats import nats_client, read_events
from harness.receiver import HttpReceiver, http_receiver
from interlock.rules import Rule, absent, all_of, heartbeat, on
from interlock.sdk import DEAD_STREAM, EVENTS_STREAM, EventValidationError, decode_event
from interlock.sdk.streams import ensure_streams
from interlock.sdk.subjects import DEAD_REASON_HEADER
from interlock.service.server import Service
from interlock.service.settings import load_settings
from interlock.service.store import Store

pytestmark = pytest.mark.slow

RULES = """
from interlock.rules import Rule, on, webhook

acted = Rule(
    name="fuzz-acted",
    when=on("fuzz.valid"),
    then=[webhook("http://127.0.0.1:{port}/acted", body={{"id": "{{{{ event.resource.id }}}}"}})],
)

keyed = Rule(
    name="keyed",
    when=on("job.keyed", for_each="resource.id"),
    then=[webhook("http://127.0.0.1:{port}/keyed", body={{"key": "{{{{ key }}}}"}})],
)

ratio = Rule(
    name="ratio",
    when=on("job.ratio"),
    then=[
        webhook("http://127.0.0.1:{port}/ratio",
                body={{"ratio": "{{{{ event.payload.a / event.payload.b }}}}"}}),
        webhook("http://127.0.0.1:{port}/after", body={{"id": "{{{{ event.resource.id }}}}"}}),
    ],
)
"""

VALID: dict[str, Any] = {
    "id": "6f1d3e2a-4b5c-4d6e-8f90-123456789abc",
    "occurred": "2026-01-01T00:00:00Z",
    "event": "fuzz.other",
    "resource": {"id": "x"},
    "payload": {"rows": 3},
    "source": "test",
}


def valid_event(resource_id: str) -> bytes:
    return json.dumps({**VALID, "id": str(uuid.uuid4()), "event": "fuzz.valid",
                       "resource": {"id": resource_id}}).encode()  # fmt: skip


def deep(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def with_payload(raw: bytes) -> bytes:
    return (
        json.dumps({**VALID, "payload": {}})
        .encode()
        .replace(b'"payload": {}', b'"payload": ' + raw)
    )


NASTY: list[tuple[str, bytes]] = [
    ("invalid UTF-8 in a string", with_payload(b'{"t": "\xff\xfe"}')),
    ("payload nested 100,000 levels", with_payload(deep(100_000))),
    ("payload nested 33 levels", with_payload(deep(33))),
    (
        "CloudEvent with a deeply nested extension",
        json.dumps(
            {
                "specversion": "1.0",
                "id": "1",
                "source": "s",
                "type": "fuzz.other",
                "interlocklabels": "[" * 50_000 + "]" * 50_000,
            }
        ).encode(),
    ),
    (
        "CloudEvent with a number for time",
        json.dumps(
            {"specversion": "1.0", "id": "1", "source": "s", "type": "fuzz.other", "time": 5}
        ).encode(),
    ),
    (
        "CloudEvent with a list for type",
        json.dumps({"specversion": "1.0", "id": "1", "source": "s", "type": ["a"]}).encode(),
    ),
    ("a huge number", with_payload(b'{"n": ' + b"9" * 5000 + b"}")),
    ("a float out of range", with_payload(b'{"n": 1e400}')),
    ("NaN", with_payload(b'{"n": NaN}')),
    ("an escaped lone surrogate", with_payload(b'{"s": "\\ud800"}')),
    ("resource.id a number", json.dumps({**VALID, "resource": {"id": 5}}).encode()),
    ("related not a list", json.dumps({**VALID, "related": {"id": "r"}}).encode()),
    ("occurred without offset", json.dumps({**VALID, "occurred": "2026-01-01T00:00:00"}).encode()),
    (
        "duplicate keys, the last one invalid",
        json.dumps(VALID).encode()[:-1] + b', "resource": "not an object"}',
    ),
    ("not JSON", b"\x00\x01garbage"),
    ("empty", b""),
    ("a JSON array", b"[1, 2, 3]"),
    ("the NUL character", with_payload(b'{"t": "a\\u0000b"}')),
    ("null", b"null"),
    ("a string too long", with_payload(json.dumps({"t": "x" * 300_000}).encode())),
    ("larger than the contract", with_payload(json.dumps({"t": ["y" * 200_000] * 5}).encode())),
]
"""(what, message): each is published on interlock.events.fuzz.other and must be dead."""


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as running:
        yield running


ServiceFactory = Callable[..., AbstractAsyncContextManager[Service]]


@pytest.fixture
def secret_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def running_service(
    sqlite_url: str, nats_url: str, tmp_path: Path, receiver: HttpReceiver, secret_key: str
) -> ServiceFactory:
    return service_factory(sqlite_url, nats_url, tmp_path, receiver, secret_key)


def service_factory(
    database_url: str, nats_url: str, tmp_path: Path, receiver: HttpReceiver, key: str
) -> ServiceFactory:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "fuzz_rules.py").write_text(RULES.format(port=receiver.port))

    @asynccontextmanager
    async def run(**options: Any) -> AsyncIterator[Service]:
        settings = load_settings(
            None,
            database_url=database_url,
            nats_url=nats_url,
            secret_key=key,
            data_dir=tmp_path / "data",
            rules_dir=rules_dir,
            deployments_file=tmp_path / "none.toml",
            api={"port": 0},
            engine={"consumer_max_wait": "50ms"},
            actions={"backoff_initial": "50ms", "max_attempts": 2},
        )
        async with Service(settings, worker=False, **options) as service:
            yield service

    return run


async def caught_up(service: Service, last_sequence: int, timeout: float = 30) -> None:
    assert service.pipeline is not None
    deadline = time.monotonic() + timeout
    while service.pipeline.stats.last_sequence < last_sequence:
        assert time.monotonic() < deadline, "the pipeline did not catch up"
        for task in service._tasks:
            assert not task.done(), f"{task.get_name()} stopped: {task}"
        await asyncio.sleep(0.05)


async def dead_letters(js: JetStreamContext) -> list[Any]:
    info = await js.stream_info(DEAD_STREAM)
    found = []
    for sequence in range(info.state.first_seq, info.state.last_seq + 1):
        if info.state.messages:
            found.append(await js.get_msg(DEAD_STREAM, sequence))
    return found


async def test_nasty_messages_are_dead_lettered_and_the_valid_ones_acted_on_once(
    running_service: ServiceFactory, receiver: HttpReceiver, nats_url: str
) -> None:
    async with running_service() as service, nats_client(nats_url) as client:
        js = client.jetstream()
        await ensure_streams(js)
        last = 0
        for index, (_, message) in enumerate(NASTY):
            last = (await js.publish("interlock.events.fuzz.other", message)).seq
            last = (await js.publish("interlock.events.fuzz.valid", valid_event(f"v{index}"))).seq
        mismatched = valid_event("forged")
        last = (await js.publish("interlock.events.fuzz.other", mismatched)).seq
        await caught_up(service, last)
        acted = await asyncio.to_thread(receiver.wait_for, len(NASTY), "/acted", 30)
        await asyncio.sleep(0.5)  # nothing more arrives
        ids = sorted(request.json()["id"] for request in receiver.received("/acted"))
        assert ids == sorted(f"v{index}" for index in range(len(NASTY))), acted
        dead = await dead_letters(js)
        assert len(dead) == len(NASTY) + 1
        reasons = [message.headers[DEAD_REASON_HEADER] for message in dead]
        assert all("Error" in reason or "Mismatch" in reason for reason in reasons), reasons
        assert any("UTF-8" in reason for reason in reasons)
        assert any("nests deeper than 32 levels" in reason for reason in reasons)
        assert reasons[-1].startswith("SubjectMismatch: the body names the event 'fuzz.valid'")
        assert dead[-1].subject == "interlock.dead.subject"
        assert service.pipeline is not None
        assert service.pipeline.stats.errors == 0
        async with httpx.AsyncClient(base_url=service.api_url) as http:
            assert (await http.get("/api/health")).status_code == 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)


@st.composite
def hostile_messages(draw: st.DrawFn) -> tuple[str, bytes]:
    """(subject, data): a valid event mutated, maybe published on the wrong subject."""
    doc: dict[str, Any] = {**VALID, "id": str(uuid.uuid4())}
    if draw(st.booleans()):
        doc = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "s", "type": "fuzz.other"}
    for _ in range(draw(st.integers(0, 2))):
        field = draw(st.sampled_from([*VALID, "type", "time", "subject", "data", "extra"]))
        doc[field] = draw(json_values)
    raw = msgspec.json.encode(doc)
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=4)) + raw[at:]
    subject = draw(st.sampled_from(["interlock.events.fuzz.other", "interlock.events.fuzz.x"]))
    return subject, raw


def oracle_valid(subject: str, data: bytes) -> bool:
    try:
        event = decode_event(data)
    except EventValidationError:
        return False
    return subject == f"interlock.events.{event.event}"


@settings(
    max_examples=3,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # a shrink restarts the service per step
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(messages=st.lists(hostile_messages(), min_size=40, max_size=40))
def test_hostile_messages_are_each_accounted_for_and_the_service_goes_on(
    running_service: ServiceFactory,
    receiver: HttpReceiver,
    nats_url: str,
    messages: list[tuple[str, bytes]],
) -> None:
    async def scenario() -> None:
        async with running_service() as service, nats_client(nats_url) as client:
            js = client.jetstream()
            await ensure_streams(js)
            assert service.pipeline is not None
            # Earlier examples ran on the same stream: start counting once they are read.
            await caught_up(service, (await js.stream_info(EVENTS_STREAM)).state.last_seq)
            stats = service.pipeline.stats
            events_before, dead_before = stats.events, stats.dead_letters
            already = len(receiver.received("/acted"))
            marker = uuid.uuid4().hex[:8]
            last = 0
            for index, (subject, data) in enumerate(messages):
                last = (await js.publish(subject, data)).seq
                valid = valid_event(f"{marker}-{index}")
                last = (await js.publish("interlock.events.fuzz.valid", valid)).seq
            await caught_up(service, last)
            expected_valid = sum(oracle_valid(subject, data) for subject, data in messages)
            # Every message read is fed or dead-lettered: with the dead ones exactly the
            # invalid ones, the valid ones were fed (stats.events also counts the
            # service's own interlock.* events, so it is not compared here).
            assert stats.dead_letters - dead_before == len(messages) - expected_valid
            assert stats.events - events_before >= expected_valid + len(messages)
            await asyncio.to_thread(receiver.wait_for, already + len(messages), "/acted", 30)
            mine = [r for r in receiver.received("/acted") if r.json()["id"].startswith(marker)]
            assert len(mine) == len(messages)
            assert stats.errors == 0

    asyncio.run(scenario())


async def test_a_template_failing_at_render_fails_only_its_action(
    running_service: ServiceFactory, receiver: HttpReceiver, nats_url: str
) -> None:
    async with running_service() as service, nats_client(nats_url) as client:
        js = client.jetstream()
        await ensure_streams(js)
        event = {**VALID, "event": "job.ratio", "payload": {"a": 1, "b": 0}}
        last = (await js.publish("interlock.events.job.ratio", json.dumps(event).encode())).seq
        await caught_up(service, last)
        [after] = await asyncio.to_thread(receiver.wait_for, 1, "/after", 30)
        assert after.json() == {"id": "x"}
        assert service.store is not None
        for _ in range(200):
            rows = await service.store.outbox.list(rule="ratio")
            failed = [row for row in rows if row.state == "failed"]
            if failed:
                break
            await asyncio.sleep(0.05)
        [row] = failed
        assert row.index == 0
        assert "ZeroDivisionError: division by zero" in (row.last_error or "")
        assert receiver.received("/ratio") == []
        last = (await js.publish("interlock.events.fuzz.valid", valid_event("later"))).seq
        await asyncio.to_thread(receiver.wait_for, 1, "/acted", 30)


async def test_a_stored_rule_that_can_no_longer_be_built_is_quarantined_at_start(
    running_service: ServiceFactory,
    receiver: HttpReceiver,
    sqlite_url: str,
    nats_url: str,
    secret_key: str,
) -> None:
    # Stored by an earlier version, before validation refused this shape (the issue's
    # reproduction): Engine(...) raised AttributeError and the server would not start.
    bad = Rule(name="abc-within-6h", when=all_of("job.a.done", "job.b.done", within="6h"))
    absence = absent("job.c.done", by=heartbeat("10m"))
    msgspec.structs.force_setattr(bad.when, "triggers", [*bad.when.triggers, absence])
    owned = Rule(name="owned", when=on("x.y"), owner="oncall")
    msgspec.structs.force_setattr(owned, "when", bad.when)
    store = Store(sqlite_url, secret_key=secret_key)
    await store.migrate()
    await store.channels.put("oncall", f"json://127.0.0.1:{receiver.port}/owner")
    await store.rules.apply_all([bad, owned])
    await store.close()
    async with running_service() as service, nats_client(nats_url) as client:
        async with httpx.AsyncClient(base_url=service.api_url) as http:
            listed = {rule["name"]: rule for rule in (await http.get("/api/rules")).json()}
            assert listed["abc-within-6h"]["state"] == "broken"
            assert "cannot be read" in listed["abc-within-6h"]["broken"]
            assert "when.triggers[2]" in listed["abc-within-6h"]["broken"]
            assert listed["fuzz-acted"]["state"] == "active"
            shown = await http.get("/api/rules/abc-within-6h")
            assert shown.status_code == 200, shown.text
            assert shown.json()["status"]["broken"]
        [notice] = await asyncio.to_thread(receiver.wait_for, 1, "/owner", 30)
        assert "owned is broken" in notice.json()["title"]
        announced = await read_events(client, 2, subject="interlock.events.interlock.rule.broken")
        assert sorted(event.resource_id for event in announced) == ["abc-within-6h", "owned"]
        js = client.jetstream()
        await js.publish("interlock.events.fuzz.valid", valid_event("still-running"))
        [acted] = await asyncio.to_thread(receiver.wait_for, 1, "/acted", 30)
        assert acted.json() == {"id": "still-running"}


async def test_an_event_holding_nul_is_dead_and_the_pipeline_goes_on_on_postgresql(
    postgres_url: str,
    nats_url: str,
    tmp_path: Path,
    receiver: HttpReceiver,
    secret_key: str,
) -> None:
    # PostgreSQL's text columns cannot hold NUL: a firing keyed by this resource id failed
    # every attempt to store its batch, and the pipeline retried that batch for ever.
    run = service_factory(postgres_url, nats_url, tmp_path, receiver, secret_key)
    async with run() as service, nats_client(nats_url) as client:
        js = client.jetstream()
        await ensure_streams(js)
        keyed = {**VALID, "event": "job.keyed", "resource": {"id": "etl\u0000sales"}}
        await js.publish("interlock.events.job.keyed", json.dumps(keyed).encode())
        await js.publish("interlock.events.fuzz.valid", valid_event("after-nul"))
        [acted] = await asyncio.to_thread(receiver.wait_for, 1, "/acted", 30)
        assert acted.json() == {"id": "after-nul"}
        [dead] = await dead_letters(js)
        assert "resource.id holds the NUL character" in dead.headers[DEAD_REASON_HEADER]
        assert service.pipeline is not None
        assert service.pipeline.stats.errors == 0
