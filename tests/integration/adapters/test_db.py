"""Database adapters against real SQLite and PostgreSQL, publishing to a real nats-server.

Every test body that applies to both databases runs on both (``db_url``); LISTEN/NOTIFY,
credentials and outages are PostgreSQL's own. Events are read back from JetStream, so
"published once" means stored once, de-duplication by deterministic id included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from harness.nats import init_streams, stored_events
from harness.postgres import PostgresCluster
from integration.adapters.db_fixtures import (
    create_sales,
    insert_sales,
    loaded_at,
    publisher_config,
    sales,
    wait_until,
)
from interlock.adapters.base import (
    AdapterConfigError,
    SourceRefused,
    SourceUnavailable,
    deterministic_id,
)
from interlock.adapters.checkpoints import FileCheckpointStore
from interlock.adapters.db import (
    FreshnessAdapter,
    ListenAdapter,
    ListenRunner,
    NewRowsAdapter,
    SQLCheckAdapter,
)
from interlock.adapters.runner import AdapterRunner
from interlock.sdk import SyncPublisher


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = create_sales(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def publisher(nats_url: str, tmp_path: Path) -> Iterator[SyncPublisher]:
    init_streams(nats_url)
    with SyncPublisher(publisher_config(nats_url, tmp_path)) as publisher:
        yield publisher


def database_name(url: str) -> str:
    database = sa.make_url(url).database or ""
    return Path(database).stem if url.startswith("sqlite") else database


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# -- db.freshness ----------------------------------------------------------------------


def freshness(url: str, **options: object) -> FreshnessAdapter:
    base = {"url": url, "table": "sales", "column": "loaded_at", "count_rows": True}
    return FreshnessAdapter.from_options("sales-fresh", {**base, **options})


def test_freshness_reports_each_advance_once(
    db_url: str, engine: sa.Engine, publisher: SyncPublisher, nats_url: str, tmp_path: Path
) -> None:
    insert_sales(engine, 3)
    adapter = freshness(db_url)
    runner = AdapterRunner(adapter, publisher, FileCheckpointStore(tmp_path / "checkpoints"))
    runner.run_once()
    runner.run_once()  # nothing new: no event
    insert_sales(engine, 2)
    runner.run_once()
    adapter.close()

    first, second = stored_events(nats_url, expected=2)
    resource_id = f"{database_name(db_url)}.sales"
    assert first.event == second.event == "db.table.updated"
    assert first.resource == {
        "id": resource_id,
        "database": database_name(db_url),
        "table": "sales",
    }
    assert first.payload == {
        "table": "sales",
        "column": "loaded_at",
        "high_water_mark": loaded_at(3).isoformat(),
        "previous_high_water_mark": None,
        "row_count": 3,
        "row_count_delta": None,
    }
    assert second.payload["high_water_mark"] == "2026-01-05T09:04:00"
    assert second.payload["previous_high_water_mark"] == "2026-01-05T09:02:00"
    assert (second.payload["row_count"], second.payload["row_count_delta"]) == (5, 2)
    assert second.source == "adapter.test"
    assert runner.stats.polls == 3


def test_freshness_restart_neither_misses_nor_repeats(
    db_url: str, engine: sa.Engine, publisher: SyncPublisher, nats_url: str, tmp_path: Path
) -> None:
    store = FileCheckpointStore(tmp_path / "checkpoints")
    insert_sales(engine, 1)
    first = freshness(db_url)
    AdapterRunner(first, publisher, store).run_once()
    first.close()
    stale = store.load("sales-fresh")

    insert_sales(engine, 1)  # while the adapter is down
    restarted = freshness(db_url)
    runner = AdapterRunner(restarted, publisher, store)
    runner.run_once()
    runner.run_once()
    assert runner.stats.events == 1

    # A crash after publishing but before saving the checkpoint repeats the poll from
    # the stale checkpoint: the same event id, dropped by JetStream.
    repeated = restarted.poll(stale)
    publisher.publish_many(repeated.events)
    restarted.close()

    events = stored_events(nats_url, expected=2)
    assert [e.payload["high_water_mark"] for e in events] == [
        "2026-01-05T09:00:00",
        "2026-01-05T09:01:00",
    ]
    assert repeated.events[0].id == events[1].id


def test_freshness_on_an_empty_table_waits_for_the_first_row(
    db_url: str, engine: sa.Engine
) -> None:
    adapter = freshness(db_url, count_rows=False, resource_id="warehouse.sales")
    empty = adapter.poll(None)
    assert empty.events == []
    insert_sales(engine, 2)
    loaded = adapter.poll(empty.checkpoint)
    adapter.close()
    (event,) = loaded.events
    assert event.resource_id == "warehouse.sales"
    assert "row_count" not in event.payload
    identity = adapter.database.identity  # the database, whatever the driver
    assert identity.startswith(("sqlite://", "postgresql://postgres@127.0.0.1:"))
    mark = loaded_at(2).isoformat()
    assert event.id == deterministic_id(identity, None, "sales", "loaded_at", mark)


# -- db.rows ---------------------------------------------------------------------------


def rows_adapter(url: str, **options: object) -> NewRowsAdapter:
    base = {
        "url": url,
        "table": "sales",
        "key_column": "id",
        "batch_size": 10,
        "start": "beginning",
        "sample_columns": ["id", "amount", "day"],
        "sample_size": 2,
    }
    return NewRowsAdapter.from_options("sales-rows", {**base, **options})


def test_rows_drain_in_batches_and_resume_from_the_last_key(
    db_url: str, engine: sa.Engine, publisher: SyncPublisher, nats_url: str, tmp_path: Path
) -> None:
    store = FileCheckpointStore(tmp_path / "checkpoints")
    insert_sales(engine, 25, amount=12.5)
    adapter = rows_adapter(db_url)
    runner = AdapterRunner(adapter, publisher, store)
    while runner.run_once():
        pass
    adapter.close()
    stale = store.load("sales-rows")
    assert stale == {"last_key": {"type": "int", "value": 25}}

    insert_sales(engine, 7)
    restarted = rows_adapter(db_url)
    runner = AdapterRunner(restarted, publisher, store)
    while runner.run_once():
        pass
    runner.run_once()
    publisher.publish_many(restarted.poll(stale).events)  # a repeated poll: duplicates
    restarted.close()

    events = stored_events(nats_url, expected=4)
    assert {e.event for e in events} == {"db.rows.inserted"}
    ranges = [(e.payload["first_key"], e.payload["last_key"], e.payload["count"]) for e in events]
    assert ranges == [(1, 10, 10), (11, 20, 10), (21, 25, 5), (26, 32, 7)]
    assert events[0].payload["sample"] == [
        {"id": 1, "amount": 12.5, "day": "2026-01-06"},
        {"id": 2, "amount": 12.5, "day": "2026-01-07"},
    ]
    assert events[0].resource["table"] == "sales"


def test_rows_start_latest_reports_only_new_rows(db_url: str, engine: sa.Engine) -> None:
    insert_sales(engine, 5)
    adapter = rows_adapter(db_url, start="latest", sample_columns=[])
    first = adapter.poll(None)
    assert first.events == []
    insert_sales(engine, 3)
    second = adapter.poll(first.checkpoint)
    adapter.close()
    (event,) = second.events
    assert (event.payload["first_key"], event.payload["last_key"]) == (6, 8)
    assert "sample" not in event.payload
    assert second.more is False


# -- db.check --------------------------------------------------------------------------

NEGATIVE = "SELECT id, amount, day, note FROM sales WHERE amount < 0 ORDER BY id"


def test_check_fails_with_a_json_sample_once_per_slot_then_passes(
    db_url: str, engine: sa.Engine, publisher: SyncPublisher, nats_url: str, tmp_path: Path
) -> None:
    insert_sales(engine, 2)
    insert_sales(engine, 3, amount=-3.5)
    clock = Clock(datetime(2026, 1, 5, 9, 0, 10, tzinfo=UTC))
    adapter = SQLCheckAdapter.from_options(
        "negative-amounts", {"url": db_url, "query": NEGATIVE, "sample_size": 2, "slot": "1m"}
    )
    adapter.clock = clock
    runner = AdapterRunner(adapter, publisher, FileCheckpointStore(tmp_path / "checkpoints"))
    runner.run_once()
    clock.now += timedelta(seconds=20)
    runner.run_once()  # same slot, same outcome: a duplicate
    with engine.begin() as connection:
        connection.execute(sales.update().values(amount=1))
    runner.run_once()  # same slot, new outcome: a new event
    clock.now += timedelta(minutes=1)
    runner.run_once()  # next slot
    adapter.close()

    failed, passed, passed_again = stored_events(nats_url, expected=3)
    assert failed.event == "db.check.failed"
    assert failed.resource == {
        "id": f"{database_name(db_url)}.negative-amounts",
        "database": database_name(db_url),
        "check": "negative-amounts",
    }
    assert failed.payload == {
        "check": "negative-amounts",
        "outcome": "failed",
        "row_count": 3,
        "row_count_capped": False,
        "columns": ["id", "amount", "day", "note"],
        "sample": [
            {"id": 3, "amount": -3.5, "day": "2026-01-05", "note": "row 3"},
            {"id": 4, "amount": -3.5, "day": "2026-01-06", "note": "row 4"},
        ],
        "previous_outcome": None,
        "query": NEGATIVE,
    }
    assert (passed.event, passed.payload["previous_outcome"]) == ("db.check.passed", "failed")
    assert "sample" not in passed.payload
    assert passed_again.event == "db.check.passed"
    assert passed_again.id != passed.id
    assert runner.stats.events == 4  # four polls published, JetStream kept three


def test_check_counts_failing_rows_up_to_the_limit(db_url: str, engine: sa.Engine) -> None:
    insert_sales(engine, 5, amount=-1)
    adapter = SQLCheckAdapter.from_options(
        "capped", {"url": db_url, "query": NEGATIVE, "sample_size": 1, "count_limit": 3}
    )
    (event,) = adapter.poll(None).events
    adapter.close()
    assert (event.payload["row_count"], event.payload["row_count_capped"]) == (3, True)
    assert len(event.payload["sample"]) == 1


# -- errors ----------------------------------------------------------------------------


def test_a_missing_table_or_column_is_refused_by_name(db_url: str, engine: sa.Engine) -> None:
    cases = [
        (freshness(db_url, table="salez"), "table 'salez' does not exist"),
        (freshness(db_url, column="updated"), "column 'updated' does not exist in table 'sales'"),
        (rows_adapter(db_url, sample_columns=["nope"]), "column 'nope' does not exist"),
        (
            SQLCheckAdapter.from_options("bad", {"url": db_url, "query": "SELECT x FROM salez"}),
            "salez",
        ),
    ]
    for adapter, message in cases:
        with pytest.raises(SourceRefused, match=message):
            adapter.poll(None)
        adapter.close()
    writer = SQLCheckAdapter.from_options(
        "writes", {"url": db_url, "query": "UPDATE sales SET note = 'x'"}
    )
    with pytest.raises(SourceRefused):  # read-only on PostgreSQL, no rows on SQLite
        writer.poll(None)
    writer.close()


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        (FreshnessAdapter, {"table": "t", "column": "c"}, "url: is required"),
        (FreshnessAdapter, {"url": "not a url", "table": "t", "column": "c"}, "not a database"),
        (FreshnessAdapter, {"url": "nosuch://x", "table": "t", "column": "c"}, "dialect"),
        (
            FreshnessAdapter,
            {"url": "sqlite://", "table": "t", "column": "c", "cuont_rows": True},
            "cuont_rows: is not an option of 'db.freshness'",
        ),
        (
            NewRowsAdapter,
            {"url": "sqlite://", "table": "t", "key_column": "id", "batch_size": 0},
            "batch_size",
        ),
        (
            NewRowsAdapter,
            {"url": "sqlite://", "table": "t", "key_column": "id", "start": "now"},
            "start",
        ),
        (SQLCheckAdapter, {"url": "sqlite://", "query": "SELECT 1", "slot": "soon"}, "slot"),
        (ListenAdapter, {"url": "sqlite://", "channel": "c"}, "PostgreSQL's"),
    ],
)
def test_bad_options_fail_at_start_naming_the_option(
    kind: type[FreshnessAdapter], options: dict[str, object], message: str
) -> None:
    with pytest.raises(AdapterConfigError, match=message):
        kind.from_options("broken", options)


@pytest.mark.postgres
def test_postgres_refuses_bad_credentials_and_a_missing_database(
    postgres: PostgresCluster,
) -> None:
    nobody = postgres.url.replace("postgres@", "nobody:secret@")
    for url, message in (
        (nobody, 'role "nobody" does not exist'),
        (postgres.url_for("nope"), "nope"),
    ):
        adapter = freshness(url)
        with pytest.raises(SourceRefused, match=message) as refused:
            adapter.poll(None)
        assert "secret" not in str(refused.value)
        adapter.close()
    listener = ListenAdapter.from_options("loads", {"url": nobody, "channel": "loads"})
    with pytest.raises(SourceRefused, match="nobody"):
        listener.receive(0.1)
    unreachable = "postgresql+psycopg://postgres@127.0.0.1:1/warehouse"
    with pytest.raises(SourceUnavailable, match="Connection refused"):
        freshness(unreachable).poll(None)
    with pytest.raises(SourceUnavailable, match="Connection refused"):
        ListenAdapter.from_options("loads", {"url": unreachable, "channel": "c"}).receive(0.1)


@pytest.mark.postgres
def test_the_runner_backs_off_while_postgres_is_down_and_resumes(
    postgres: PostgresCluster,
    postgres_url: str,
    publisher: SyncPublisher,
    nats_url: str,
    tmp_path: Path,
) -> None:
    engine = create_sales(postgres_url)
    insert_sales(engine, 1)
    adapter = freshness(postgres_url)
    runner = AdapterRunner(
        adapter,
        publisher,
        FileCheckpointStore(tmp_path / "checkpoints"),
        interval=timedelta(milliseconds=100),
        max_backoff=timedelta(milliseconds=400),
    )
    stop = threading.Event()
    thread = threading.Thread(target=runner.run_forever, args=(stop,))
    thread.start()
    try:
        wait_until(lambda: runner.stats.events == 1, message="the first event")
        postgres.stop()
        wait_until(lambda: runner.stats.failures >= 2, message="failed polls")
        postgres.start()
        engine.dispose()  # the test's own pooled connections died with the server
        insert_sales(engine, 1)
        wait_until(lambda: runner.stats.events == 2, message="the event after the outage")
    finally:
        stop.set()
        thread.join(10)
        adapter.close()
        engine.dispose()
    assert not thread.is_alive()
    events = stored_events(nats_url, expected=2)
    assert [e.payload["high_water_mark"] for e in events] == [
        "2026-01-05T09:00:00",
        "2026-01-05T09:01:00",
    ]


# -- interlock adapter run -------------------------------------------------------------


def interlock(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlock.sdk.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_cli_runs_db_adapters_once(
    db_url: str, engine: sa.Engine, nats_url: str, tmp_path: Path
) -> None:
    init_streams(nats_url)
    insert_sales(engine, 3)
    insert_sales(engine, 1, amount=-2)
    config = tmp_path / "adapters.toml"
    config.write_text(
        f"""
[nats]
url = "{nats_url}"
spool_dir = "{tmp_path / "spool"}"

[adapters.sales-updated]
kind = "db.freshness"
checkpoint_dir = "{tmp_path / "checkpoints"}"
url = "{db_url}"
table = "sales"
column = "loaded_at"

[adapters.negative-amounts]
kind = "db.check"
checkpoint_dir = "{tmp_path / "checkpoints"}"
url = "{db_url}"
query = "SELECT id FROM sales WHERE amount < 0"
"""
    )
    env = {**os.environ, "INTERLOCK_PUBLISH_TIMEOUT": "15"}
    first = interlock("adapter", "run", "sales-updated", "--config", str(config), "--once", env=env)
    assert first.returncode == 0, first.stderr
    assert "sales-updated: 1 poll(s), 1 event(s), 0 spooled" in first.stdout
    check = interlock(
        "adapter", "run", "negative-amounts", "--config", str(config), "--once", env=env
    )
    assert "1 event(s)" in check.stdout, check.stderr
    saved = json.loads((tmp_path / "checkpoints" / "sales-updated.json").read_text())
    assert saved == {"high_water_mark": {"type": "datetime", "value": "2026-01-05T09:03:00"}}

    updated, failed = stored_events(nats_url, expected=2)
    assert (updated.event, updated.source) == ("db.table.updated", "adapter.db.freshness")
    assert updated.payload["high_water_mark"] == "2026-01-05T09:03:00"
    assert failed.event == "db.check.failed"
    assert failed.payload["sample"] == [{"id": 4}]


# -- db.listen -------------------------------------------------------------------------


def notify(engine: sa.Engine, channel: str, *payloads: str) -> None:
    with engine.begin() as connection:
        for payload in payloads:
            connection.execute(sa.text("SELECT pg_notify(:c, :p)"), {"c": channel, "p": payload})


@pytest.mark.postgres
def test_listen_maps_json_and_plain_text_notifications(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    adapter = ListenAdapter.from_options(
        "loads", {"url": postgres_url, "channel": "Loads", "event": "warehouse.notified"}
    )
    strict = ListenAdapter.from_options("strict", {"url": postgres_url, "channel": "Loads"})
    assert adapter.receive(0.1) == strict.receive(0.1) == []  # both listening now
    given = uuid.uuid4()
    notify(
        engine,
        "Loads",
        f'{{"event": "warehouse.load.finished", "resource_id": "warehouse.sales",'
        f' "payload": {{"rows": 1200}}, "labels": {{"schema": "dw"}}, "id": "{given}",'
        f' "occurred": "2026-01-05T09:00:00+00:00"}}',
        "sales reloaded",
        '{"table": "orders"}',
        '{"event": "bad name!", "resource_id": "x"}',
    )
    events = adapter.receive(5)
    strict_events = strict.receive(5)
    adapter.close()
    strict.close()
    engine.dispose()

    database = sa.make_url(postgres_url).database
    assert [e.event for e in events] == [
        "warehouse.load.finished",
        "warehouse.notified",
        "warehouse.notified",
    ]
    assert events[0].id == given
    assert events[0].resource == {
        "id": "warehouse.sales",
        "database": database,
        "channel": "Loads",
        "schema": "dw",
    }
    assert events[0].payload == {"rows": 1200}
    assert events[0].occurred == datetime(2026, 1, 5, 9, tzinfo=UTC)
    assert events[1].resource_id == f"{database}.Loads"
    assert events[1].payload == {"message": "sales reloaded"}
    assert events[2].payload == {"table": "orders"}
    assert adapter.rejected == 1
    assert [e.event for e in strict_events] == ["warehouse.load.finished"]
    assert strict.rejected == 3


@pytest.mark.postgres
def test_listen_runner_reconnects_when_postgres_restarts(
    postgres: PostgresCluster, postgres_url: str, publisher: SyncPublisher, nats_url: str
) -> None:
    engine = sa.create_engine(postgres_url)
    adapter = ListenAdapter.from_options(
        "loads", {"url": postgres_url, "channel": "loads", "event": "warehouse.notified"}
    )
    runner = ListenRunner(adapter, publisher, max_backoff=timedelta(milliseconds=500))
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,))
    thread.start()
    try:
        wait_until(lambda: adapter.connections == 1, message="LISTEN")
        notify(engine, "loads", "before")
        wait_until(lambda: runner.stats.events == 1, message="the notification before")
        postgres.restart()
        engine.dispose()
        # NOTIFY is not durable: keep notifying until the runner listens again.
        sent = 0

        def delivered() -> bool:
            nonlocal sent
            if runner.stats.events < 2:
                sent += 1
                notify(engine, "loads", f"after {sent}")
            return runner.stats.events >= 2

        wait_until(delivered, timeout=30, message="a notification after the restart")
    finally:
        stop.set()
        thread.join(10)
        adapter.close()
        engine.dispose()
    assert not thread.is_alive()
    assert runner.stats.failures >= 1
    assert adapter.connections >= 2
    messages = [e.payload["message"] for e in stored_events(nats_url, expected=2)]
    assert messages[0] == "before"
    assert messages[1].startswith("after ")


@pytest.mark.postgres
def test_cli_runs_db_listen_once(postgres_url: str, nats_url: str, tmp_path: Path) -> None:
    init_streams(nats_url)
    engine = sa.create_engine(postgres_url)
    config = tmp_path / "adapters.toml"
    config.write_text(
        f"""
[nats]
url = "{nats_url}"
spool_dir = "{tmp_path / "spool"}"

[adapters.loads]
kind = "db.listen"
interval = "100ms"
checkpoint_dir = "{tmp_path / "checkpoints"}"
url = "{postgres_url}"
channel = "loads"
event = "warehouse.notified"
wait = "30s"                   # --once: returns as soon as the notifications arrive
"""
    )
    command = ["adapter", "run", "loads", "--config", str(config), "--once"]
    process = subprocess.Popen(
        [sys.executable, "-m", "interlock.sdk.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "INTERLOCK_PUBLISH_TIMEOUT": "15"},
    )
    listening = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'interlock-loads' AND query LIKE 'LISTEN%'"
    )
    try:

        def is_listening() -> bool:
            with engine.connect() as connection:
                return bool(connection.execute(listening).scalar_one())

        wait_until(is_listening, message="the adapter's LISTEN")
        notify(
            engine,
            "loads",
            "one",
            "two",
            '{"event": "warehouse.load.finished", "resource_id": "s"}',
        )
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
        engine.dispose()
    assert process.returncode == 0, err
    assert "3 event(s), 0 spooled" in out
    events = stored_events(nats_url, expected=3)
    assert [e.event for e in events] == [
        "warehouse.notified",
        "warehouse.notified",
        "warehouse.load.finished",
    ]
    assert {e.source for e in events} == {"adapter.db.listen"}
