"""``NatsOptions`` against a real nats-server: password, token, TLS, mutual TLS, .creds, failover.

Each test starts the servers it needs with the authentication or TLS flags of its case.
The certificates are made once per session with the ``openssl`` command line: a
throwaway CA, a server certificate for ``127.0.0.1``/``localhost``, a client certificate.

A refused connection names the server's reason (authorization, TLS verification), which
nats-py only reports to its error callback. A TLS handshake failure still takes the full
timeout to surface: nats-py hangs closing the failed transport (nats-io/nats.py#718).
"""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from harness.tls import Certificates, make_certificates
from interlock.sdk import (
    EVENTS_STREAM,
    BusError,
    ConfigurationError,
    NatsOptions,
    Publisher,
    PublisherConfig,
    connect,
    decode_event,
    ensure_streams,
    subject_for,
)
from interlock.service.embedded_nats import EmbeddedNatsServer

TIMEOUT = 1.0  # the bound handed to connect() in the failure cases
SLACK = 0.5  # scheduling leeway on top of it

StartServer = Callable[..., EmbeddedNatsServer]


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA valid for a day, and a server and a client certificate it signed."""
    made = make_certificates(tmp_path_factory.mktemp("tls"))
    if made is None:
        pytest.skip("the openssl command line is needed to make test certificates")
    return made


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start a JetStream nats-server with extra command-line arguments; stop all after."""
    numbers = itertools.count()
    with ExitStack() as servers:

        def start(*extra_args: str | Path) -> EmbeddedNatsServer:
            directory = tmp_path / f"nats-{next(numbers)}"
            server = EmbeddedNatsServer(
                directory / "jetstream",
                port=0,
                log_path=directory / "nats.log",
                extra_args=[str(arg) for arg in extra_args],
            )
            return servers.enter_context(server)

        yield start


def options_for(*servers: EmbeddedNatsServer | str, **fields: object) -> NatsOptions:
    """Options for these servers (or URLs) with fast attempts, so a refusal takes ~0.1 s."""
    urls = tuple(server if isinstance(server, str) else server.url for server in servers)
    fast = {"connect_timeout": 0.5, "reconnect_wait": 0.1}
    return NatsOptions(servers=urls, **{**fast, **fields})  # type: ignore[arg-type]


async def assert_publishes(options: NatsOptions, spool_dir: Path) -> None:
    """Provision the streams, publish one event through a Publisher, find it stored."""
    client = await connect(options)
    try:
        js = client.jetstream()
        await ensure_streams(js)
        config = PublisherConfig(nats=options, spool_dir=spool_dir, source="test")
        async with Publisher(config) as publisher:
            event = publisher.event("test.connection", "connection-options")
            result = await publisher.publish(event)
        assert (result.stored, result.spooled) == (1, 0)
        stored = await js.get_last_msg(EVENTS_STREAM, subject_for("test.connection"))
        assert stored.data is not None
        assert decode_event(stored.data) == event
    finally:
        await client.close()


async def refused(options: NatsOptions) -> BusError:
    """Connect with ``TIMEOUT``; return the BusError, checking it came within the bound."""
    started = time.monotonic()
    with pytest.raises(BusError) as caught:
        await connect(options, timeout=TIMEOUT)
    assert time.monotonic() - started < TIMEOUT + SLACK
    assert caught.value.servers == list(options.servers)
    return caught.value


# --- user and password ---------------------------------------------------------------


@pytest.fixture
def password_server(start_server: StartServer) -> EmbeddedNatsServer:
    return start_server("--user", "alice", "--pass", "s3cret")


async def test_user_and_password_connect_and_publish(
    password_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    good = options_for(password_server, user="alice", password="s3cret")
    await assert_publishes(good, tmp_path / "spool")


async def test_a_wrong_password_is_refused_within_the_timeout(
    password_server: EmbeddedNatsServer,
) -> None:
    await refused(options_for(password_server, user="alice", password="wrong"))


async def test_a_wrong_password_says_authorization_failed(
    password_server: EmbeddedNatsServer,
) -> None:
    error = await refused(options_for(password_server, user="alice", password="wrong"))
    assert "authorization" in error.reason.lower()


# --- token ---------------------------------------------------------------------------


@pytest.fixture
def token_server(start_server: StartServer) -> EmbeddedNatsServer:
    return start_server("--auth", "t0ken-for-tests")


async def test_a_token_connects_and_publishes(
    token_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    await assert_publishes(options_for(token_server, token="t0ken-for-tests"), tmp_path / "spool")


async def test_a_wrong_token_is_refused_within_the_timeout(
    token_server: EmbeddedNatsServer,
) -> None:
    await refused(options_for(token_server, token="not-the-token"))


# --- TLS -----------------------------------------------------------------------------


@pytest.fixture
def tls_server(start_server: StartServer, certificates: Certificates) -> EmbeddedNatsServer:
    return start_server(
        "--tls", "--tlscert", certificates.server, "--tlskey", certificates.server_key
    )


async def test_tls_with_the_ca_connects_and_publishes(
    tls_server: EmbeddedNatsServer, certificates: Certificates, tmp_path: Path
) -> None:
    await assert_publishes(options_for(tls_server, tls_ca_file=certificates.ca), tmp_path / "spool")


async def test_tls_without_the_ca_is_refused_within_the_timeout(
    tls_server: EmbeddedNatsServer,
) -> None:
    await refused(options_for(tls_server))


async def test_tls_without_the_ca_says_certificate_verification_failed(
    tls_server: EmbeddedNatsServer,
) -> None:
    error = await refused(options_for(tls_server))
    assert "certificate verify failed" in error.reason


@pytest.fixture
def mutual_tls_server(start_server: StartServer, certificates: Certificates) -> EmbeddedNatsServer:
    return start_server(
        "--tlsverify",
        "--tlscert", certificates.server,
        "--tlskey", certificates.server_key,
        "--tlscacert", certificates.ca,
    )  # fmt: skip


async def test_mutual_tls_with_a_client_certificate_connects_and_publishes(
    mutual_tls_server: EmbeddedNatsServer, certificates: Certificates, tmp_path: Path
) -> None:
    client_tls = options_for(
        mutual_tls_server,
        tls_ca_file=certificates.ca,
        tls_cert_file=certificates.client,
        tls_key_file=certificates.client_key,
    )
    await assert_publishes(client_tls, tmp_path / "spool")


async def test_mutual_tls_without_a_client_certificate_is_refused(
    mutual_tls_server: EmbeddedNatsServer, certificates: Certificates
) -> None:
    await refused(options_for(mutual_tls_server, tls_ca_file=certificates.ca))


# --- credentials file ----------------------------------------------------------------


def test_a_missing_credentials_file_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.creds"
    with pytest.raises(ConfigurationError) as caught:
        NatsOptions(servers=("nats://127.0.0.1:4222",), credentials_file=missing)
    assert caught.value.setting == "nats.credentials_file"
    assert str(missing) in caught.value.reason


async def test_a_malformed_credentials_file_is_a_clear_error(
    start_server: StartServer, tmp_path: Path
) -> None:
    # nats-py 2.16 loops forever, blocking the event loop, on a file without a JWT when
    # the server asks for a signature (nats-io/nats.py#1020): NatsOptions refuses it first.
    creds = tmp_path / "malformed.creds"
    creds.write_text("this is not a NATS credentials file\n")
    with pytest.raises(ConfigurationError) as caught:
        await connect(options_for(start_server(), credentials_file=creds), timeout=TIMEOUT)
    assert caught.value.setting == "nats.credentials_file"
    assert "BEGIN NATS USER JWT" in caught.value.reason


# --- several servers -----------------------------------------------------------------


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A URL that refuses connections: a port we hold bound but do not listen on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield f"nats://127.0.0.1:{holder.getsockname()[1]}"


async def test_a_dead_server_in_the_list_is_skipped(
    start_server: StartServer, dead_url: str
) -> None:
    live = start_server()
    # randomize=False keeps the order, so the dead server is always tried first.
    client = await connect(options_for(dead_url, live, randomize=False), timeout=TIMEOUT)
    try:
        assert client.connected_url is not None
        assert client.connected_url.port == live.port
    finally:
        await client.close()
