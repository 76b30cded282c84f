"""Cost of a ``db.freshness`` check on a 1,000,000-row table, with and without an index.

For PostgreSQL (a throwaway cluster, started like the test harness's) and SQLite (a
file in a temporary directory), the table ``events(id, loaded_at, amount)`` is filled
with ``--rows`` rows, then :class:`~interlock.adapters.db.FreshnessAdapter` polls are
timed, first without and then with an index on ``loaded_at``:

- ``quiet_poll_ms``: the steady state, nothing changed: ``SELECT max(loaded_at)``
  (plus the connection pool's liveness ping and building no event);
- ``advanced_poll_with_count_ms``: the mark advanced and ``count_rows = true``:
  ``max`` plus ``SELECT count(*)``, which scans whatever the index.

Each figure is the median of ``--rounds`` polls (first poll, which connects and checks
the table, excluded); the minimum is reported too.

    python tests/perf/bench_db.py [--rows 1000000] [--rounds 9] [--out .bench]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the harness

from figures import write_figures

from harness.postgres import PostgresCluster
from interlock.adapters.db import FreshnessAdapter

FILL = {
    "postgresql": """
        INSERT INTO events (id, loaded_at, amount)
        SELECT n, timestamp '2026-01-01' + n * interval '1 second', n % 1000
        FROM generate_series(1, :rows) AS n
    """,
    "sqlite": """
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows)
        INSERT INTO events (id, loaded_at, amount)
        SELECT i, datetime('2026-01-01', '+' || i || ' seconds'), i % 1000 FROM n
    """,
}


def fill(url: str, backend: str, rows: int) -> float:
    """Create and fill ``events``; return the seconds it took."""
    started = time.perf_counter()
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("CREATE TABLE events (id bigint, loaded_at timestamp, amount numeric)")
        )
        connection.execute(sa.text(FILL[backend]), {"rows": rows})
    analyze(engine, backend)
    engine.dispose()
    return time.perf_counter() - started


def analyze(engine: sa.Engine, backend: str) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(
            sa.text("VACUUM ANALYZE events" if backend == "postgresql" else "ANALYZE")
        )


def time_polls(url: str, rounds: int) -> dict[str, float]:
    """Median and minimum milliseconds of quiet polls and of advanced polls that count."""
    adapter = FreshnessAdapter.from_options(
        "bench", {"url": url, "table": "events", "column": "loaded_at", "count_rows": True}
    )
    current = adapter.poll(None).checkpoint  # connects, checks the table, counts once
    behind = {**current, "high_water_mark": {"type": "datetime", "value": "2026-01-01T00:00:00"}}
    quiet: list[float] = []
    advanced: list[float] = []
    for _ in range(rounds):
        for checkpoint, samples, expected in ((current, quiet, 0), (behind, advanced, 1)):
            started = time.perf_counter()
            result = adapter.poll(checkpoint)
            samples.append((time.perf_counter() - started) * 1000)
            assert len(result.events) == expected, result
    adapter.close()
    return {
        "quiet_poll_ms": round(statistics.median(quiet), 3),
        "quiet_poll_min_ms": round(min(quiet), 3),
        "advanced_poll_with_count_ms": round(statistics.median(advanced), 3),
        "advanced_poll_with_count_min_ms": round(min(advanced), 3),
    }


def measure(url: str, backend: str, rows: int, rounds: int) -> dict[str, Any]:
    seconds = fill(url, backend, rows)
    print(f"  {backend}: {rows:,} rows written in {seconds:.1f}s")
    figures: dict[str, Any] = {"fill_s": round(seconds, 1)}
    figures["no_index"] = time_polls(url, rounds)
    print(f"  {backend} without index: {figures['no_index']}")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE INDEX events_loaded_at ON events (loaded_at)"))
    analyze(engine, backend)
    engine.dispose()
    figures["index"] = time_polls(url, rounds)
    print(f"  {backend} with index:    {figures['index']}")
    return figures


def main(rows: int, rounds: int, out: Path) -> dict[str, object]:
    figures: dict[str, object] = {"benchmark": "db_freshness_check_cost", "rows": rows}
    with PostgresCluster() as cluster, cluster.database() as url:
        figures["postgresql"] = measure(url, "postgresql", rows, rounds)
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            figures["postgresql_version"] = connection.execute(
                sa.text("SHOW server_version")
            ).scalar()
        engine.dispose()
    with tempfile.TemporaryDirectory() as scratch:
        figures["sqlite"] = measure(f"sqlite:///{scratch}/bench.db", "sqlite", rows, rounds)
    figures |= {
        "rounds": rounds,
        "sqlite_version": sqlite3.sqlite_version,
    }
    write_figures(out / "db.json", figures)
    for backend in ("postgresql", "sqlite"):
        result: Any = figures[backend]
        print(
            f"db.freshness on {rows:,} rows, {backend}: quiet poll "
            f"{result['no_index']['quiet_poll_ms']:.1f} ms without index, "
            f"{result['index']['quiet_poll_ms']:.2f} ms with; advanced poll with count_rows "
            f"{result['no_index']['advanced_poll_with_count_ms']:.1f} / "
            f"{result['index']['advanced_poll_with_count_ms']:.1f} ms (median of {rounds})"
        )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    arguments = parser.parse_args()
    main(arguments.rows, arguments.rounds, arguments.out)
