"""Fixtures of the store contract suite: every test body runs on SQLite and PostgreSQL.

- ``database_url``: a migrated, empty database of each backend (a new SQLite file, or
  the module's PostgreSQL database truncated); ``store`` / ``other_store`` are stores on
  it with a ``FakeClock`` (``clock``) at ``START``;
- ``fresh_database_url``: a new database of each backend that was never migrated (for
  the migration tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa

from contract.store_fixtures import SECRET_KEY, START, sync_engine
from harness.postgres import PostgresCluster
from interlock.rules.clock import FakeClock
from interlock.service.store import Store
from interlock.service.store.tables import metadata

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def fresh_database_url(request: pytest.FixtureRequest) -> str:
    """A new, empty database that was never migrated."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(scope="module")
def migrated_postgres_url(postgres: PostgresCluster) -> Iterator[str]:
    """One migrated PostgreSQL database for the module, emptied before each test."""
    with postgres.database() as url:
        asyncio.run(_migrate(url))
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database: a new SQLite file, or the emptied PostgreSQL one.

    Migrating PostgreSQL once per module rather than once per test keeps the suite fast
    (DDL is most of a test's cost there); the migration tests use ``fresh_database_url``.
    """
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        asyncio.run(_migrate(url))
        return url
    url = request.getfixturevalue("migrated_postgres_url")
    tables = ", ".join(table.name for table in metadata.sorted_tables)
    with sync_engine(url) as engine, engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {tables} CASCADE"))
    return url


async def _migrate(url: str) -> None:
    async with Store(url) as store:
        await store.migrate()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def store(database_url: str, clock: FakeClock) -> AsyncIterator[Store]:
    async with Store(database_url, secret_key=SECRET_KEY, clock=clock) as store:
        yield store


@pytest.fixture
async def other_store(database_url: str, clock: FakeClock, store: Store) -> AsyncIterator[Store]:
    """A second store on the same database: its own connections, like a second replica."""
    async with Store(database_url, secret_key=SECRET_KEY, clock=clock) as other:
        yield other
