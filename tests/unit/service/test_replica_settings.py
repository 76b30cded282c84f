"""Replica settings (issue 19): refused with SQLite or embedded NATS, bounds, the SQLite lock."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from interlock.sdk.errors import ConfigurationError
from interlock.service.ownership import SqliteInUse, SqliteLock
from interlock.service.ownership.replica import replica_name
from interlock.service.settings import load_settings

KEY = Fernet.generate_key().decode()
POSTGRES = "postgresql://interlock@db:5432/interlock"
NATS = "nats://nats-1:4222"
NEEDS = "several interlock servers need PostgreSQL"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("INTERLOCK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_replicas_are_off_by_default() -> None:
    settings = load_settings()
    assert settings.replicas.enabled is False
    assert settings.replicas.lease_ttl == timedelta(seconds=10)
    assert settings.replicas.lease_bucket == "INTERLOCK_LEASES"


def test_replicas_with_postgresql_and_a_nats_server() -> None:
    settings = load_settings(
        None,
        database_url=POSTGRES,
        nats_url=NATS,
        secret_key=KEY,
        replicas={"enabled": True, "lease_ttl": "3s", "name": "replica-a"},
    )
    assert settings.replicas.lease_ttl == timedelta(seconds=3)
    assert replica_name(settings) == "replica-a"
    assert replica_name(load_settings()).endswith(f"-{os.getpid()}")


@pytest.mark.parametrize(
    ("database_url", "nats_url"),
    [("sqlite:///x.db", NATS), (POSTGRES, "embedded"), ("sqlite:///x.db", "embedded")],
)
def test_replicas_on_sqlite_or_embedded_nats_are_refused(database_url: str, nats_url: str) -> None:
    with pytest.raises(ConfigurationError, match=f"replicas.enabled.*{NEEDS}"):
        load_settings(
            None,
            database_url=database_url,
            nats_url=nats_url,
            secret_key=KEY,
            replicas={"enabled": True},
        )


def test_replicas_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_REPLICAS__ENABLED", "true")
    monkeypatch.setenv("INTERLOCK_REPLICAS__LEASE_TTL", "500ms")
    with pytest.raises(ConfigurationError, match="between 1 second and 10 minutes"):
        load_settings(None, database_url=POSTGRES, nats_url=NATS, secret_key=KEY)
    monkeypatch.setenv("INTERLOCK_REPLICAS__LEASE_TTL", "15s")
    settings = load_settings(None, database_url=POSTGRES, nats_url=NATS, secret_key=KEY)
    assert settings.replicas.enabled
    assert settings.replicas.lease_ttl == timedelta(seconds=15)


def test_a_bad_bucket_name_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="lease_bucket"):
        load_settings(replicas={"lease_bucket": "leases.of.interlock"})


def test_one_sqlite_lock_per_database_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'interlock.db'}"
    first, second = SqliteLock(url), SqliteLock(url)
    first.acquire()
    try:
        with pytest.raises(SqliteInUse, match=rf"pid {os.getpid()}\).*{NEEDS}") as refused:
            second.acquire()
        assert refused.value.path == tmp_path / "data" / "interlock.db"
    finally:
        first.release()
    second.acquire()  # free once the first let go
    second.release()
    SqliteLock(POSTGRES).acquire()  # nothing to lock
    SqliteLock("sqlite:///:memory:").acquire()
