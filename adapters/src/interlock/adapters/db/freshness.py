"""``db.freshness``: a table's ``max(<timestamp column>)`` advanced → ``db.table.updated``.

Each poll reads the high-water mark, ``SELECT max(column) FROM table`` (one index probe
when the column is indexed, a full scan when not: see ``docs/adapters/db.md`` for the
figures), and compares it with the checkpoint's. When it advanced, the poll emits one
``db.table.updated`` whose id is a UUID5 of the database, the table, the column and the
new mark, so a repeated poll re-publishes a duplicate that JetStream drops. The first
poll (no checkpoint) reports the mark it finds, with ``previous_high_water_mark: null``.

With ``count_rows = true`` the event also carries the row count and its change since the
last event; the count (a full scan) runs only when the mark advanced, never on a quiet
poll. A mark that moves *back* (rows deleted, table reloaded) is recorded silently, so
the next load is reported again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from interlock.adapters.base import PollingAdapter, PollResult, deterministic_id
from interlock.adapters.db._source import Database, table_clause
from interlock.adapters.db._values import (
    decode_mark,
    encode_mark,
    is_after,
    json_safe,
    normalize,
)
from interlock.adapters.section_options import Options
from interlock.sdk.errors import ConfigurationError
from interlock.sdk.event import Event, utc_now

__all__ = ["FreshnessAdapter"]

logger = logging.getLogger(__name__)


class FreshnessAdapter(PollingAdapter):
    """Watches one table's high-water mark.

    Args:
        name: The adapter's name (its checkpoint's name).
        database: The database the table lives in.
        table: The table (or view).
        column: The timestamp (or any ordered) column whose maximum is the mark.
        schema: The table's schema; the connection's default when ``None``.
        resource_id: The events' resource id; ``<database>.<table>`` by default
            (``<database>.<schema>.<table>`` with a schema).
        count_rows: Also report the row count and its change.
        clock: The time stamped on events.
    """

    kind = "db.freshness"

    def __init__(
        self,
        name: str,
        *,
        database: Database,
        table: str,
        column: str,
        schema: str | None = None,
        resource_id: str | None = None,
        count_rows: bool = False,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(name)
        self.database = database
        self.table = table
        self.column = column
        self.schema = schema
        qualified = f"{schema}.{table}" if schema else table
        self.resource_id = resource_id or f"{database.name}.{qualified}"
        self.count_rows = count_rows
        self.clock = clock
        self._table = table_clause(table, schema, column)

    @classmethod
    def from_options(cls, name: str, options: dict[str, Any]) -> FreshnessAdapter:
        """Build from ``url``, ``table``, ``column`` and the optional settings."""
        read = Options(cls.kind, name, options)
        adapter = cls(
            name,
            database=Database.from_options(read),
            table=read.string("table", example="sales"),
            column=read.string("column", example="loaded_at"),
            schema=read.optional_string("schema"),
            resource_id=read.optional_string("resource_id"),
            count_rows=read.boolean("count_rows", False),
        )
        read.finish()
        return adapter

    def poll(self, checkpoint: dict[str, Any] | None) -> PollResult:
        """Emit ``db.table.updated`` if the mark advanced since ``checkpoint``."""
        checkpoint = checkpoint or {}
        try:
            previous = decode_mark(checkpoint.get("high_water_mark"))
        except ValueError as exc:
            raise ConfigurationError(
                f"checkpoint of {self.name!r}", f"{exc}; remove it to start over"
            ) from exc
        previous_rows = checkpoint.get("row_count")
        column = self._table.c[self.column]
        with self.database.connect() as connection:
            self.database.require(connection, self.table, self.schema, (self.column,))
            mark = normalize(connection.execute(sa.select(sa.func.max(column))).scalar())
            advanced = mark is not None and (previous is None or is_after(mark, previous))
            rows = previous_rows
            if self.count_rows and (advanced or previous_rows is None):
                count = sa.select(sa.func.count()).select_from(self._table)
                rows = connection.execute(count).scalar_one()
        if mark is not None and previous is not None and not advanced and mark != previous:
            logger.info(
                "adapter %s: high-water mark of %s moved back from %s to %s",
                self.name,
                self.resource_id,
                previous,
                mark,
            )
        events = [self._event(mark, previous, rows, previous_rows)] if advanced else []
        new_checkpoint: dict[str, Any] = {"high_water_mark": encode_mark(mark)}
        if self.count_rows:
            new_checkpoint["row_count"] = rows
        return PollResult(events=events, checkpoint=new_checkpoint)

    def _event(self, mark: Any, previous: Any, rows: int | None, previous_rows: Any) -> Event:
        payload: dict[str, Any] = {
            "table": self.table,
            "column": self.column,
            "high_water_mark": json_safe(mark),
            "previous_high_water_mark": json_safe(previous),
        }
        if self.count_rows:
            payload["row_count"] = rows
            payload["row_count_delta"] = (
                rows - previous_rows
                if isinstance(rows, int) and isinstance(previous_rows, int)
                else None
            )
        resource = {"id": self.resource_id, "database": self.database.name, "table": self.table}
        if self.schema:
            resource["schema"] = self.schema
        return Event(
            id=deterministic_id(
                self.database.identity, self.schema, self.table, self.column, json_safe(mark)
            ),
            occurred=self.clock(),
            event="db.table.updated",
            resource=resource,
            payload=payload,
        )

    def close(self) -> None:
        """Close the database connections."""
        self.database.dispose()
