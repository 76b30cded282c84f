"""Connections in the store (issue 20), on SQLite and PostgreSQL.

Secrets are encrypted at rest and never shown; a rotation is resolved at once in this
process; the service's own key rotates (old keys read, the newest writes, re-encrypt);
channels are the ``apprise`` connections, and the migration moved them.
"""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from contract.store_fixtures import SECRET_KEY, START, sync_engine
from interlock.rules.clock import FakeClock
from interlock.sdk.connections import ConnectionNotFound
from interlock.service import migrations
from interlock.service.store import InvalidRecord, NotFound, Store, StoreError

PASSWORD = "pw-7f3a-s3cr3t"
TOKEN = "tok-91c2-s3cr3t"
AIRFLOW = {"url": "http://airflow.test:8080", "username": "svc", "password": PASSWORD}


async def test_a_connection_is_shown_without_its_secrets(
    store: Store, database_url: str, clock: FakeClock
) -> None:
    created, change = await store.connections.put("prod-airflow", "airflow", AIRFLOW)
    assert created.kind == "airflow"
    assert created.settings == {
        "url": "http://airflow.test:8080",
        "username": "svc",
        "api_version": "v2",
    }
    assert created.secrets == ["password"]
    assert (created.version, change.change, change.fields) == (
        1,
        "created",
        ["password", "url", "username"],
    )
    await store.connections.put(
        "tickets", "http", {"base_url": "http://t.test", "headers": {"X-Api-Key": TOKEN}}
    )
    await store.connections.put("warehouse", "database", {"url": f"postgresql://u:{PASSWORD}@db/w"})
    listed = await store.connections.list()
    assert [c.name for c in listed] == ["prod-airflow", "tickets", "warehouse"]
    assert listed[1].settings["header_names"] == ["X-Api-Key"]
    assert listed[2].settings["url"] == "postgresql://u@db/w"
    shown = repr(listed) + msgspec.json.encode(listed).decode()
    shown += repr(await store.connections.get("tickets")) + repr(store.connections)
    shown += msgspec.json.encode(await store.connections.history()).decode()
    resolved = await store.connections.resolve("prod-airflow")
    shown += repr(resolved) + str(resolved)
    assert PASSWORD not in shown
    assert TOKEN not in shown
    assert resolved.secrets == {"password": PASSWORD}
    with sync_engine(database_url) as engine, engine.connect() as connection:
        raw = connection.execute(sa.text("SELECT * FROM connections")).all()
        raw += connection.execute(sa.text("SELECT * FROM connection_changes")).all()
    assert PASSWORD.encode() not in repr(raw).encode()
    assert TOKEN.encode() not in repr(raw).encode()


async def test_a_rotation_is_resolved_at_once_and_listed(
    store: Store, other_store: Store, clock: FakeClock
) -> None:
    await store.connections.put("prod-airflow", "airflow", AIRFLOW)
    assert (await store.connections.resolve("prod-airflow")).secrets["password"] == PASSWORD
    assert (await other_store.connections.resolve("prod-airflow")).version == 1
    clock.advance("1m")
    rotated, change = await store.connections.rotate("prod-airflow", {"password": "new-pw"})
    assert (rotated.version, change.change, change.fields) == (2, "rotated", ["password"])
    assert rotated.settings["username"] == "svc"  # kept
    assert (await store.connections.resolve("prod-airflow")).secrets["password"] == "new-pw"
    # Another process sees it once told (the event) or once its cache expires.
    other_store.connections.forget("prod-airflow")
    assert (await other_store.connections.resolve("prod-airflow")).secrets["password"] == "new-pw"
    history = await store.connections.history("prod-airflow")
    assert [(h.change, h.version, h.at) for h in history] == [
        ("rotated", 2, START + timedelta(minutes=1)),
        ("created", 1, START),
    ]
    await store.connections.delete("prod-airflow")
    with pytest.raises(ConnectionNotFound, match="'prod-airflow' does not exist"):
        await store.connections.resolve("prod-airflow")
    assert (await store.connections.history())[0].change == "removed"


async def test_http_headers_rotate_by_name(store: Store) -> None:
    await store.connections.put(
        "tickets",
        "http",
        {"base_url": "http://t.test", "headers": {"X-A": "a", "X-B": "b"}, "token": TOKEN},
    )
    await store.connections.rotate("tickets", {"headers": {"X-A": "a2", "X-B": ""}})
    resolved = await store.connections.resolve("tickets")
    assert resolved.secrets == {"headers": {"X-A": "a2"}, "token": TOKEN}
    assert (await store.connections.get("tickets")).settings["header_names"] == [
        "X-A",
        "Authorization",
    ]


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("ftp", {}, "kind must be one of airflow, prefect, s3, database, http, apprise"),
        ("airflow", {"url": "http://a"}, "password give username and password, or a token"),
        ("airflow", {"url": "ftp://a", "token": PASSWORD}, "url must be an http"),
        (
            "airflow",
            {"url": "http://a", "token": PASSWORD, "pasword": "x"},
            "pasword is not a field of airflow connections",
        ),
        ("prefect", {}, "url is required for prefect connections"),
        ("s3", {"access_key_id": "AK"}, "give access_key_id and secret_access_key together"),
        ("http", {"base_url": f"http://u:{PASSWORD}@h"}, "must not hold credentials"),
        ("http", {"base_url": "http://h", "headers": {"X": f"a\n{PASSWORD}"}}, "one line"),
        ("apprise", {"url": f"not a url {PASSWORD}"}, "is not an Apprise URL"),
        ("database", {"url": 5}, "url must be a string"),
    ],
)
async def test_bad_fields_are_named_without_the_secret(
    store: Store, kind: str, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidRecord, match=message) as caught:
        await store.connections.put("c1", kind, fields)
    assert PASSWORD not in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_rotate_takes_secrets_only(store: Store) -> None:
    await store.connections.put("prod-airflow", "airflow", AIRFLOW)
    with pytest.raises(InvalidRecord, match="url is not a secret of airflow connections"):
        await store.connections.rotate("prod-airflow", {"url": "http://x"})
    with pytest.raises(NotFound):
        await store.connections.rotate("nope", {"password": "x"})


async def test_the_service_key_rotates_without_losing_a_secret(database_url: str) -> None:
    old, new = SECRET_KEY, Fernet.generate_key().decode()
    async with Store(database_url, secret_key=old) as before:
        await before.connections.put("prod-airflow", "airflow", AIRFLOW)
        await before.channels.put("ops", "json://127.0.0.1/hook")
    async with Store(database_url, secret_key=new, previous_keys=[old]) as during:
        # The old key still reads; the newest writes.
        assert (await during.connections.resolve("prod-airflow")).secrets["password"] == PASSWORD
        await during.connections.put("tickets", "http", {"base_url": "http://t", "token": TOKEN})
        assert await during.connections.reencrypt() == 2  # prod-airflow and ops
        assert await during.connections.reencrypt() == 0
    async with Store(database_url, secret_key=new) as after:
        assert (await after.connections.resolve("prod-airflow")).secrets["password"] == PASSWORD
        assert (await after.connections.resolve("tickets")).secrets["token"] == TOKEN
        assert await after.channels.get_secret("ops") == "json://127.0.0.1/hook"
    async with Store(database_url, secret_key=old) as stale:
        with pytest.raises(StoreError, match="previous_secret_keys") as caught:
            await stale.connections.resolve("tickets")
        assert old not in str(caught.value)


async def test_channels_are_apprise_connections(store: Store) -> None:
    await store.channels.put("ops", "json://127.0.0.1/hook")
    connection = await store.connections.get("ops")
    assert (connection.kind, connection.settings, connection.secrets) == (
        "apprise",
        {"scheme": "json"},
        ["url"],
    )
    await store.connections.put("prod-airflow", "airflow", AIRFLOW)
    assert [c.name for c in await store.channels.list()] == ["ops"]
    with pytest.raises(InvalidRecord, match="is a connection of kind airflow, not a channel"):
        await store.channels.put("prod-airflow", "json://x/y")
    with pytest.raises(NotFound):
        await store.channels.get_secret("prod-airflow")


async def test_the_migration_moves_channels_keeping_names_and_tokens(
    fresh_database_url: str,
) -> None:
    fernet = Fernet(SECRET_KEY)
    url = "slack://T000/B000/s3cr3tXYZ"
    with sync_engine(fresh_database_url) as engine:
        with engine.begin() as connection:
            migrations.upgrade(connection, "0006")
            connection.execute(
                sa.text(
                    "INSERT INTO channels (name, scheme, secret, created_at, updated_at) "
                    "VALUES ('data-team', 'slack', :secret, :at, :at)"
                ),
                {"secret": fernet.encrypt(url.encode()), "at": START},
            )
        with engine.begin() as connection:
            migrations.upgrade(connection)
    async with Store(fresh_database_url, secret_key=SECRET_KEY) as store:
        assert await store.channels.get_secret("data-team") == url
        assert [c.url for c in await store.channels.list()] == ["slack://***"]
        assert (await store.connections.get("data-team")).kind == "apprise"
