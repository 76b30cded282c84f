"""Helpers of the database adapter tests: a sales table on any backend, JetStream reads.

The same table is created with SQLAlchemy Core on SQLite and PostgreSQL, so one test
body runs on both: ``loaded_at`` is a timestamp without time zone, ``amount`` a numeric
read as float (SQLite has no decimals), ``day`` a date.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from interlock.sdk import (
    NatsOptions,
    PublisherConfig,
)

T0 = datetime(2026, 1, 5, 9, 0)
"""The first row's ``loaded_at``; row ``n`` is loaded ``n - 1`` minutes later."""

metadata = sa.MetaData()
sales = sa.Table(
    "sales",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("loaded_at", sa.DateTime),
    sa.Column("amount", sa.Numeric(10, 2, asdecimal=False)),
    sa.Column("day", sa.Date),
    sa.Column("note", sa.Text),
)


def loaded_at(row: int) -> datetime:
    return T0 + timedelta(minutes=row - 1)


def create_sales(url: str) -> sa.Engine:
    """Create the empty ``sales`` table; return an engine for the test's own writes."""
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    return engine


def insert_sales(engine: sa.Engine, count: int, *, amount: float = 10.5) -> list[int]:
    """Append ``count`` rows (``loaded_at`` one minute apart); return their ids."""
    with engine.begin() as connection:
        last = connection.execute(sa.select(sa.func.coalesce(sa.func.max(sales.c.id), 0)))
        first = int(last.scalar_one()) + 1
        ids = list(range(first, first + count))
        connection.execute(
            sales.insert(),
            [
                {
                    "id": n,
                    "loaded_at": loaded_at(n),
                    "amount": amount,
                    "day": date(2026, 1, 5) + timedelta(days=n % 3),
                    "note": f"row {n}",
                }
                for n in ids
            ],
        )
    return ids


def publisher_config(nats_url: str, tmp_path: Path) -> PublisherConfig:
    options = NatsOptions(servers=(nats_url,), reconnect_wait=0.1, connect_timeout=0.5)
    # A generous timeout: on a loaded machine a 2 s one spools, and a spooled event is
    # stored later, out of order.
    return PublisherConfig(
        nats=options, spool_dir=tmp_path / "spool", source="adapter.test", timeout=15
    )


def wait_until(condition: Callable[[], object], timeout: float = 15, message: str = "") -> None:
    """Poll ``condition()`` every 50 ms until it is true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}")
        time.sleep(0.05)
