"""``/api/connections`` (issue 20) over a real store (SQLite, PostgreSQL) and NATS.

No answer, log line or event holds a secret; ``test`` says in one line which step failed
(checked against a local endpoint that wants a bearer token); changes are published as
``interlock.connection.updated`` and listed by time; channels are ``apprise``
connections; a rule naming a missing connection is applied with a warning.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.fernet import Fernet

from harness.nats import nats_client
from integration.service.actions.dispatch_fixtures import events_named
from interlock.rules import Rule, call, on, webhook
from interlock.rules.clock import SystemClock
from interlock.rules.rule import dump_rules
from interlock.service.connections.events import forget_on_change
from interlock.service.store import Store
from interlock.service.store.connections import Connections

from .conftest import Rig

TOKEN = "tok-5e1f-s3cr3t"
PASSWORD = "pw-77aa-s3cr3t"


class BearerEndpoint:
    """A local HTTP endpoint that answers 200 to ``Bearer <token>`` and 401 otherwise."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.seen: list[tuple[str, str]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                given = self.headers.get("Authorization", "")
                endpoint.seen.append((self.path, given))
                self.send_response(200 if given == f"Bearer {endpoint.token}" else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def endpoint() -> Iterator[BearerEndpoint]:
    server = BearerEndpoint(TOKEN)
    yield server
    server.close()


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text
        assert PASSWORD not in text


async def test_add_list_show_and_history_never_show_a_secret(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await rig.client.post(
        "/api/connections",
        json={
            "name": "prod-airflow",
            "kind": "airflow",
            "fields": {"url": "http://airflow.test:8080", "username": "svc", "password": PASSWORD},
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["secrets"] == ["password"]
    await rig.client.post(
        "/api/connections",
        json={
            "name": "tickets",
            "kind": "http",
            "fields": {"base_url": "http://t", "token": TOKEN},
        },
    )
    rotated = await rig.client.post(
        "/api/connections/prod-airflow/rotate", json={"secrets": {"password": "next-pw"}}
    )
    assert rotated.status_code == 201, rotated.text
    assert rotated.json()["version"] == 2
    listed = await rig.client.get("/api/connections")
    shown = await rig.client.get("/api/connections/tickets")
    assert shown.json()["settings"] == {"base_url": "http://t", "header_names": ["Authorization"]}
    history = await rig.client.get("/api/connections/history")
    assert [(h["name"], h["change"], h["fields"]) for h in history.json()] == [
        ("prod-airflow", "rotated", ["password"]),
        ("tickets", "created", ["base_url", "token"]),
        ("prod-airflow", "created", ["password", "url", "username"]),
    ]
    one = await rig.client.get("/api/connections/history", params={"name": "tickets"})
    assert len(one.json()) == 1
    _no_secret(created.text, listed.text, shown.text, history.text, rotated.text, caplog.text)

    events = await events_named(rig.nats_url, "interlock.connection.updated", 3)
    assert [(e.resource_id, e.payload["change"]) for e in events] == [
        ("prod-airflow", "created"),
        ("tickets", "created"),
        ("prod-airflow", "rotated"),
    ]
    assert events[2].resource["kind"] == "airflow"
    assert events[2].payload == {"change": "rotated", "fields": ["password"], "version": 2}
    _no_secret(*(json.dumps(e.payload) + json.dumps(e.resource) for e in events))

    bad = await rig.client.post(
        "/api/connections",
        json={"name": "x", "kind": "http", "fields": {"base_url": f"http://u:{PASSWORD}@h"}},
    )
    assert bad.status_code == 400
    assert "base_url must not hold credentials" in bad.json()["detail"]
    _no_secret(bad.text)
    removed = await rig.client.delete("/api/connections/tickets")
    assert removed.status_code == 204
    assert (await rig.client.get("/api/connections/tickets")).status_code == 404


async def test_test_says_in_one_line_which_step_failed(rig: Rig, endpoint: BearerEndpoint) -> None:
    fields = {"base_url": f"{endpoint.url}/api", "token": "wrong-" + TOKEN}
    await rig.client.post(
        "/api/connections", json={"name": "tickets", "kind": "http", "fields": fields}
    )
    refused = (await rig.client.post("/api/connections/tickets/test")).json()
    assert (refused["ok"], refused["outcome"]) == (False, "refused")
    assert refused["detail"] == (
        f"the HTTP endpoint at {endpoint.url} answered but refused the credentials (HTTP 401)"
    )
    _no_secret(json.dumps(refused))

    await rig.client.post("/api/connections/tickets/rotate", json={"secrets": {"token": TOKEN}})
    accepted = (await rig.client.post("/api/connections/tickets/test")).json()
    assert (accepted["ok"], accepted["outcome"]) == (True, "ok")
    assert endpoint.seen[-1] == ("/api", f"Bearer {TOKEN}")

    endpoint.close()
    gone = (await rig.client.post("/api/connections/tickets/test")).json()
    assert (gone["ok"], gone["outcome"]) == (False, "unreachable")
    assert "does not answer" in gone["detail"]
    assert "\n" not in gone["detail"]


async def test_channels_are_apprise_connections_through_the_api(rig: Rig) -> None:
    url = f"json://127.0.0.1:9/{TOKEN}"
    added = await rig.client.post("/api/channels", json={"name": "ops", "url": url})
    assert added.status_code == 201, added.text
    connections = (await rig.client.get("/api/connections", params={"kind": "apprise"})).json()
    assert [(c["name"], c["settings"]) for c in connections] == [("ops", {"scheme": "json"})]
    assert (await rig.client.get("/api/channels")).json()[0]["url"] == "json://***"
    assert await rig.services.store.channels.get_secret("ops") == url
    events = await events_named(rig.nats_url, "interlock.connection.updated", 1)
    assert events[0].payload["change"] == "created"
    _no_secret(json.dumps([e.payload for e in events]))


async def test_reencrypt_rewrites_secrets_under_the_newest_key(rig: Rig) -> None:
    await rig.client.post(
        "/api/connections",
        json={
            "name": "tickets",
            "kind": "http",
            "fields": {"base_url": "http://t", "token": TOKEN},
        },
    )
    again = await rig.client.post("/api/connections/reencrypt")
    assert again.json() == {"reencrypted": 0}  # already under the newest key


async def test_a_rule_naming_a_missing_connection_gets_a_warning(rig: Rig) -> None:
    rule = Rule(
        name="tickets-on-failure",
        when=on("airflow.dag_run.failed"),
        then=[
            webhook(connection="tickets", path="/issues"),
            call("airflow_trigger_dag", connection="prod-airflow", dag_id="retry"),
        ],
    )
    document = json.loads(dump_rules([rule]))
    applied = (await rig.client.post("/api/rules", json=document)).json()
    assert [(w["path"], w["message"]) for w in applied["warnings"]] == [
        ("then[0].connection", "connection 'tickets' does not exist (yet)"),
        ("then[1].params.connection", "connection 'prod-airflow' does not exist (yet)"),
    ]
    assert "interlock connections add tickets" in applied["warnings"][0]["hint"]
    await rig.services.store.connections.put("tickets", "http", {"base_url": "http://t"})
    await rig.services.store.connections.put(
        "prod-airflow", "airflow", {"url": "http://a", "token": Fernet.generate_key().decode()}
    )
    again = (await rig.client.post("/api/rules", json=document)).json()
    assert again["warnings"] == []


async def test_another_replica_forgets_a_changed_connection_at_once(
    rig: Rig, database_url: str
) -> None:
    """A second store (another replica) caching for a minute drops the name on the event."""
    async with (
        nats_client(rig.nats_url) as client,
        Store(
            database_url, secret_key=rig.services.settings.secret_key, clock=SystemClock()
        ) as other,
    ):
        other.connections = Connections(other._db, other.keyring, cache_seconds=60)
        subscription = await forget_on_change(client, other.connections)
        fields = {"base_url": "http://t", "token": "first"}
        await rig.client.post(
            "/api/connections", json={"name": "tickets", "kind": "http", "fields": fields}
        )
        assert (await other.connections.resolve("tickets")).secrets["token"] == "first"
        await rig.client.post("/api/connections/tickets/rotate", json={"secrets": {"token": TOKEN}})
        deadline = asyncio.get_running_loop().time() + 10
        while (await other.connections.resolve("tickets")).secrets["token"] != TOKEN:
            assert asyncio.get_running_loop().time() < deadline, "the change was not seen"
            await asyncio.sleep(0.02)
        await subscription.unsubscribe()
