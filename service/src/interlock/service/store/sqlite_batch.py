"""The statements of every stored batch, as SQLite's own SQL on the driver's connection.

Every batch the pipeline stores inserts its firings, queues their actions, and claims
the due ones for its dispatcher. On SQLite those statements ran in microseconds while
SQLAlchemy's execution around them (binding each value through its type, building the
multi-row VALUES, wrapping the returned rows) cost several times that: about a fifth of
the service's CPU time at a steady 200 events/s, each firing a webhook. Here the INSERTs
are written once as SQL, the claim compiled once from :mod:`.hot_statements`, and both
executed on the ``sqlite3`` connection of the store's transaction, with the values
encoded (and the claimed rows decoded) exactly as SQLAlchemy's SQLite types do
(``tests/contract/test_sqlite_batch.py`` compares the rows byte for byte):

==================  ====================================================
type                stored as
==================  ====================================================
``Uuid``            32 hexadecimal digits (``uuid.hex``)
``UtcDateTime``     ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC, no offset
``JSON``            ``json.dumps`` with its defaults
``Boolean``         0 or 1
==================  ====================================================

Errors of the driver become SQLAlchemy's (``DBAPIError``), so the store reports them as
it reports every other statement's.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import exc
from sqlalchemy.dialects import sqlite

from interlock.rules.engine.firing import Firing
from interlock.service.store import hot_statements as hot
from interlock.service.store.records import OutboxAction, OutboxEntry
from interlock.service.store.sqlite_inline import InlineConnection

__all__ = [
    "claim_due",
    "driver_connection",
    "firing_row",
    "insert_firings",
    "insert_outbox",
    "outbox_row",
    "stored_time",
]

_FIRING_COLUMNS = (
    "id, rule, key, status, at, window_start, window_end, event_ids, expected, arrived, "
    "late, summary, stored_at"
)
_OUTBOX_COLUMNS = (
    "idempotency_key, firing_id, action_index, rule, kind, action, state, attempts, "
    "next_attempt_at, last_error, claimed_by, claimed_until, created_at, updated_at"
)
_ROWS_PER_STATEMENT = 500
"""Rows per INSERT (14 values each: well within SQLite's 32,766 variables)."""


def driver_connection(connection: InlineConnection) -> sqlite3.Connection:
    """The ``sqlite3`` connection under a store transaction's connection."""
    return cast(sqlite3.Connection, connection.sync_connection.connection.dbapi_connection)


def stored_time(value: datetime | None) -> str | None:
    """An aware instant as ``UtcDateTime`` stores it on SQLite."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} given to the store; use UTC")
    utc = value.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} "
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}"
    )


def insert_firings(
    connection: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]
) -> set[uuid.UUID]:
    """Insert firing rows (see :func:`firing_row`), skipping ids stored before.

    Returns the ids inserted.
    """
    inserted: set[uuid.UUID] = set()
    for chunk in _chunks(rows):
        sql = _insert("firings", _FIRING_COLUMNS, "id", len(chunk))
        inserted.update(uuid.UUID(hex=row[0]) for row in _run(connection, sql, chunk))
    return inserted


def insert_outbox(
    connection: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]
) -> list[uuid.UUID]:
    """Queue outbox rows (see :func:`outbox_row`), skipping keys queued before.

    Returns the keys inserted.
    """
    queued: list[uuid.UUID] = []
    for chunk in _chunks(rows):
        sql = _insert("outbox", _OUTBOX_COLUMNS, "idempotency_key", len(chunk))
        queued.extend(uuid.UUID(hex=row[0]) for row in _run(connection, sql, chunk))
    return queued


def firing_row(firing: Firing, stored_at: datetime) -> tuple[Any, ...]:
    """The values of ``firing``'s row, in :data:`_FIRING_COLUMNS` order, encoded."""
    return (
        firing.id.hex,
        firing.rule,
        firing.key,
        firing.status,
        stored_time(firing.at),
        stored_time(firing.window_start),
        stored_time(firing.window_end),
        json.dumps([str(event_id) for event_id in firing.event_ids]),
        firing.expected,
        firing.arrived,
        int(firing.late),
        firing.summary,
        stored_time(stored_at),
    )


def outbox_row(entry: OutboxEntry, now: datetime) -> tuple[Any, ...]:
    """The values of ``entry``'s new (pending) row, in :data:`_OUTBOX_COLUMNS` order."""
    at = stored_time(now)
    return (
        entry.idempotency_key.hex,
        entry.firing_id.hex,
        entry.index,
        entry.rule,
        entry.kind,
        json.dumps(entry.action),
        "pending",
        0,
        at,
        None,
        None,
        None,
        at,
        at,
    )


def claim_due(
    connection: sqlite3.Connection, *, now: datetime, limit: int, worker: str, until: datetime
) -> list[OutboxAction]:
    """:func:`~.hot_statements.claim_due` on SQLite: the claimed rows, as actions."""
    sql, names, literals = _claim()
    values = {
        **literals,
        "now": stored_time(now),
        "limit": limit,
        "worker": worker,
        "until": stored_time(until),
    }
    try:
        rows = connection.execute(sql, [values[name] for name in names]).fetchall()
    except sqlite3.Error as error:
        raise exc.DBAPIError.instance(sql, None, error, sqlite3.Error) from error
    return [_action(row) for row in rows]


@cache
def _claim() -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """The claim compiled for SQLite: its SQL, its parameters' order, its literals."""
    compiled = hot.claim_due().compile(dialect=sqlite.dialect())
    placeholders = {"now": None, "limit": 0, "worker": "", "until": None}
    literals = {
        name: value
        for name, value in compiled.construct_params(placeholders).items()
        if name not in placeholders
    }
    return str(compiled), tuple(compiled.positiontup or ()), literals


def _action(row: tuple[Any, ...]) -> OutboxAction:
    """A returned ``outbox`` row (every column, in the table's order), decoded."""
    (key, firing, index, rule, kind, action, state, attempts, due, error, by, until, created,
     updated) = row  # fmt: skip
    return OutboxAction(
        idempotency_key=uuid.UUID(hex=key),
        firing_id=uuid.UUID(hex=firing),
        index=index,
        rule=rule,
        kind=kind,
        action=json.loads(action),
        state=state,
        attempts=attempts,
        next_attempt_at=_time(due),
        last_error=error,
        claimed_by=by,
        claimed_until=None if until is None else _time(until),
        created_at=_time(created),
        updated_at=_time(updated),
    )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@cache
def _insert(table: str, columns: str, returned: str, rows: int) -> str:
    """``INSERT`` of ``rows`` rows skipping conflicts; names from this module only."""
    row = "(" + ", ".join(["?"] * (columns.count(",") + 1)) + ")"
    values = ", ".join([row] * rows)
    return (
        f"INSERT INTO {table} ({columns}) VALUES {values} "  # noqa: S608 - constants only
        f"ON CONFLICT DO NOTHING RETURNING {returned}"
    )


def _chunks(rows: Sequence[tuple[Any, ...]]) -> Iterator[Sequence[tuple[Any, ...]]]:
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        yield rows[start : start + _ROWS_PER_STATEMENT]


def _run(connection: sqlite3.Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
    parameters = [value for row in rows for value in row]
    try:
        return connection.execute(sql, parameters).fetchall()
    except sqlite3.Error as error:  # reported as SQLAlchemy reports the others
        raise exc.DBAPIError.instance(sql, None, error, sqlite3.Error) from error
