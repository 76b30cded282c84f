"""``db.rows``: rows with a key past the checkpoint → ``db.rows.inserted``, one per batch.

A poll reads at most ``batch_size`` keys after the last one seen, in key order, and
emits one ``db.rows.inserted`` for them: first and last key, count, and optionally the
first few rows' ``sample_columns``. A full batch asks the runner to poll again at once
(``more``), so a backlog drains batch after batch; the checkpoint is the last key.

The event id is a UUID5 of the database, table, key column and the batch's first and
last keys: a poll repeated after a crash (before the checkpoint was saved) reads the
same batch and re-publishes a duplicate that JetStream drops. Only if rows arrived in
between does the repeated batch run further, and then it overlaps the published one:
rows may be reported twice, never missed.

The key must grow with every insert (an identity column, a sequence, an insertion
timestamp). A key is read once its row is committed, so a key drawn earlier but
committed later than a bigger one (two concurrent writers of a sequence) can fall
behind the checkpoint and be missed; see ``docs/adapters/db.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from interlock.adapters.base import PollingAdapter, PollResult, deterministic_id
from interlock.adapters.db._source import Database, table_clause
from interlock.adapters.db._values import decode_mark, encode_mark, json_safe
from interlock.adapters.section_options import Options
from interlock.sdk.errors import ConfigurationError
from interlock.sdk.event import Event, utc_now

__all__ = ["NewRowsAdapter"]


class NewRowsAdapter(PollingAdapter):
    """Reports rows inserted after the checkpoint, by an incrementing key.

    Args:
        name: The adapter's name (its checkpoint's name).
        database: The database the table lives in.
        table: The table (or view).
        key_column: The incrementing key.
        schema: The table's schema; the connection's default when ``None``.
        resource_id: The events' resource id; ``<database>.<table>`` by default.
        batch_size: Rows per event (and per query).
        sample_columns: Columns of the sampled rows put in the payload.
        sample_size: How many rows of a batch are sampled (with ``sample_columns``).
        start: Where the first poll starts: ``"latest"`` (only rows inserted from now on)
            or ``"beginning"`` (every row already there, batch after batch).
        clock: The time stamped on events.
    """

    kind = "db.rows"

    def __init__(
        self,
        name: str,
        *,
        database: Database,
        table: str,
        key_column: str,
        schema: str | None = None,
        resource_id: str | None = None,
        batch_size: int = 1000,
        sample_columns: tuple[str, ...] = (),
        sample_size: int = 5,
        start: str = "latest",
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(name)
        self.database = database
        self.table = table
        self.key_column = key_column
        self.schema = schema
        qualified = f"{schema}.{table}" if schema else table
        self.resource_id = resource_id or f"{database.name}.{qualified}"
        self.batch_size = batch_size
        self.sample_columns = sample_columns
        self.sample_size = sample_size if sample_columns else 0
        self.start = start
        self.clock = clock
        extra = tuple(column for column in sample_columns if column != key_column)
        self._table = table_clause(table, schema, key_column, *extra)

    @classmethod
    def from_options(cls, name: str, options: dict[str, Any]) -> NewRowsAdapter:
        """Build from ``url``, ``table``, ``key_column`` and the optional settings."""
        read = Options(cls.kind, name, options)
        adapter = cls(
            name,
            database=Database.from_options(read),
            table=read.string("table", example="orders"),
            key_column=read.string("key_column", example="id"),
            schema=read.optional_string("schema"),
            resource_id=read.optional_string("resource_id"),
            batch_size=read.integer("batch_size", 1000),
            sample_columns=read.strings("sample_columns"),
            sample_size=read.integer("sample_size", 5, minimum=0),
            start=read.choice("start", "latest", ("latest", "beginning")),
        )
        read.finish()
        return adapter

    def poll(self, checkpoint: dict[str, Any] | None) -> PollResult:
        """Emit one ``db.rows.inserted`` for the next batch of keys after ``checkpoint``."""
        key = self._table.c[self.key_column]
        columns = (self.key_column, *self.sample_columns)
        with self.database.connect() as connection:
            self.database.require(connection, self.table, self.schema, columns)
            if checkpoint is None and self.start == "latest":
                latest = connection.execute(sa.select(sa.func.max(key))).scalar()
                return PollResult(events=[], checkpoint={"last_key": encode_mark(latest)})
            last = self._last_key(checkpoint)
            query = (
                sa.select(*(self._table.c[name] for name in dict.fromkeys(columns)))
                .where(key.is_not(None) if last is None else key > last)
                .order_by(key)
                .limit(self.batch_size)
            )
            rows = connection.execute(query).mappings().all()
        if not rows:
            return PollResult(events=[], checkpoint={"last_key": encode_mark(last)})
        first_key, last_key = rows[0][self.key_column], rows[-1][self.key_column]
        return PollResult(
            events=[self._event(first_key, last_key, rows)],
            checkpoint={"last_key": encode_mark(last_key)},
            more=len(rows) == self.batch_size,
        )

    def _last_key(self, checkpoint: dict[str, Any] | None) -> Any:
        try:
            return decode_mark((checkpoint or {}).get("last_key"))
        except ValueError as exc:
            raise ConfigurationError(
                f"checkpoint of {self.name!r}", f"{exc}; remove it to start over"
            ) from exc

    def _event(self, first_key: Any, last_key: Any, rows: Any) -> Event:
        payload: dict[str, Any] = {
            "table": self.table,
            "key_column": self.key_column,
            "first_key": json_safe(first_key),
            "last_key": json_safe(last_key),
            "count": len(rows),
        }
        if self.sample_size:
            payload["sample"] = [
                {name: json_safe(row[name]) for name in self.sample_columns}
                for row in rows[: self.sample_size]
            ]
        resource = {"id": self.resource_id, "database": self.database.name, "table": self.table}
        if self.schema:
            resource["schema"] = self.schema
        return Event(
            id=deterministic_id(
                self.database.identity,
                self.schema,
                self.table,
                self.key_column,
                json_safe(first_key),
                json_safe(last_key),
            ),
            occurred=self.clock(),
            event="db.rows.inserted",
            resource=resource,
            payload=payload,
        )

    def close(self) -> None:
        """Close the database connections."""
        self.database.dispose()
