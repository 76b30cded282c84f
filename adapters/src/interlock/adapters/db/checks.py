"""``db.check``: a SQL query that returns rows is a failed check → ``db.check.failed``.

Each poll runs the check's query (in a transaction that is rolled back, read-only on
PostgreSQL) and emits exactly one event: ``db.check.failed`` with the number of rows
returned and the first ``sample_size`` of them as JSON (dates as ISO text, decimals as
numbers, long text cut), or ``db.check.passed``. The query runs as a subquery,
``SELECT * FROM (<query>) LIMIT count_limit + 1``, so a check that matches millions of
rows transfers at most ``count_limit + 1`` of them (and the database may stop early).

Checks have no watermark: the *poll slot* is the identity. The event id is a UUID5 of
the database, the check, the slot (the poll time divided into ``slot``-long periods)
and the outcome, so a poll repeated within the same slot (a restart, a second runner)
publishes a duplicate that JetStream drops, while a change of outcome within a slot is
a new event. Set ``slot`` to the adapter's ``interval``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from interlock.adapters.base import PollingAdapter, PollResult, SourceRefused, deterministic_id
from interlock.adapters.db._source import Database
from interlock.adapters.db._values import json_safe
from interlock.adapters.section_options import Options
from interlock.sdk.event import Event, utc_now

__all__ = ["SQLCheckAdapter"]


class SQLCheckAdapter(PollingAdapter):
    """Runs one SQL check per poll.

    Args:
        name: The adapter's name (its checkpoint's name).
        database: The database to query.
        query: A ``SELECT`` returning the rows that break the rule (none: it passes).
        check: The check's name, in the payload and the id; the adapter's name by default.
        resource_id: The events' resource id; ``<database>.<check>`` by default.
        sample_size: Failing rows put in the payload.
        count_limit: Failing rows counted at most (``row_count_capped`` says it stopped).
        slot: The length of a poll slot; set it to the adapter's interval.
        clock: The time of a poll (its slot) and of its event.
    """

    kind = "db.check"

    def __init__(
        self,
        name: str,
        *,
        database: Database,
        query: str,
        check: str | None = None,
        resource_id: str | None = None,
        sample_size: int = 10,
        count_limit: int = 10_000,
        slot: timedelta = timedelta(minutes=1),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(name)
        self.database = database
        self.query = query.strip().rstrip(";").strip()
        self.check = check or name
        self.resource_id = resource_id or f"{database.name}.{self.check}"
        self.sample_size = sample_size
        self.count_limit = max(count_limit, sample_size)
        self.slot = slot
        self.clock = clock

    @classmethod
    def from_options(cls, name: str, options: dict[str, Any]) -> SQLCheckAdapter:
        """Build from ``url``, ``query`` and the optional settings."""
        read = Options(cls.kind, name, options)
        adapter = cls(
            name,
            database=Database.from_options(read),
            query=read.string("query", example="SELECT id FROM orders WHERE amount < 0"),
            check=read.optional_string("check"),
            resource_id=read.optional_string("resource_id"),
            sample_size=read.integer("sample_size", 10, minimum=0),
            count_limit=read.integer("count_limit", 10_000),
            slot=read.duration("slot", "1m"),
        )
        read.finish()
        return adapter

    def poll(self, checkpoint: dict[str, Any] | None) -> PollResult:
        """Run the query; emit ``db.check.failed`` if it returned rows, else ``passed``."""
        now = self.clock()
        slot = int(now.timestamp() // self.slot.total_seconds())
        bounded: sa.Select[Any] = (
            sa.select(sa.literal_column("*"))
            .select_from(sa.text(self.query).columns().subquery("interlock_check"))
            .limit(self.count_limit + 1)
        )
        try:
            with self.database.connect() as connection:
                result = connection.execute(bounded)
                columns = list(result.keys())
                rows = result.all()
        except SourceRefused as exc:
            raise SourceRefused(
                self.name, f"the query of check {self.check!r} failed: {exc.reason}"
            ) from exc
        capped = len(rows) > self.count_limit
        count = min(len(rows), self.count_limit)
        sample = [
            {key: json_safe(value) for key, value in zip(columns, row, strict=True)}
            for row in rows[: self.sample_size]
        ]
        outcome = "failed" if count else "passed"
        previous = (checkpoint or {}).get("outcome")
        payload: dict[str, Any] = {"check": self.check, "outcome": outcome}
        if count:
            payload |= {
                "row_count": count,
                "row_count_capped": capped,
                "columns": columns,
                "sample": sample,
            }
        payload |= {"previous_outcome": previous, "query": json_safe(self.query, 1000)}
        event = Event(
            id=deterministic_id(self.database.identity, "check", self.check, slot, outcome),
            occurred=now,
            event=f"db.check.{outcome}",
            resource={"id": self.resource_id, "database": self.database.name, "check": self.check},
            payload=payload,
        )
        return PollResult(
            events=[event],
            checkpoint={"outcome": outcome, "checked": now.isoformat(), "slot": slot},
        )

    def close(self) -> None:
        """Close the database connections."""
        self.database.dispose()
