"""The statements of the service's hot path, built once with bound parameters.

Every firing costs a store, a claim and a finish. Building those statements anew each
time (an alias, a CTE, a dozen column comparisons) cost SQLAlchemy more than executing
them: about half of each transaction's CPU time on SQLite. Built once here, each call
only binds its values; SQLAlchemy's compiled cache does the rest.

Parameters are named in each function's docstring. The INSERTs know ``ON CONFLICT``,
which differs per dialect, so they are built once per dialect.
"""

from __future__ import annotations

import uuid
from functools import cache

import sqlalchemy as sa
from sqlalchemy.sql.dml import ReturningInsert, ReturningUpdate, Update

from interlock.service.store import tables as t
from interlock.service.store.database import dialect_insert

__all__ = [
    "claim_due",
    "expire_leases",
    "insert_firings",
    "insert_outbox",
    "reset_breakers",
    "succeed_held",
]


@cache
def expire_leases() -> Update:
    """Running rows whose lease ended go back to pending, unclaimed. Parameters: ``now``."""
    o = t.outbox
    now = sa.bindparam("now", type_=o.c.claimed_until.type)
    return (
        sa.update(o)
        .where(o.c.state == "running", o.c.claimed_until < now)
        .values(state="pending", **t.released(now))
    )


@cache
def claim_due() -> ReturningUpdate[tuple[object, ...]]:
    """Claim due pending rows, oldest due first, for one dispatcher; returns the rows.

    Parameters: ``now``, ``limit``, ``worker``, ``until`` (the end of the lease).
    A row after an ``approve`` step of its firing that has not succeeded, or whose
    circuit breaker is open, is not due.
    """
    o, b = t.outbox, t.action_breakers
    now = sa.bindparam("now", type_=o.c.next_attempt_at.type)
    earlier = o.alias("earlier")
    awaiting_approval = sa.exists().where(
        earlier.c.firing_id == o.c.firing_id,
        earlier.c.action_index < o.c.action_index,
        earlier.c.kind == "approve",
        earlier.c.state != "succeeded",
    )
    breaker_open = sa.exists().where(
        b.c.rule == o.c.rule, b.c.action_index == o.c.action_index, b.c.suspended
    )
    chosen = (
        sa.select(o.c.idempotency_key)
        .where(
            o.c.state == "pending",
            o.c.next_attempt_at <= now,
            ~awaiting_approval,
            ~breaker_open,
        )
        .order_by(o.c.next_attempt_at, o.c.firing_id, o.c.action_index)
        .limit(sa.bindparam("limit", type_=sa.Integer))
        .with_for_update(skip_locked=True)
        .cte("chosen")
    )
    return (
        sa.update(o)
        .where(o.c.idempotency_key.in_(sa.select(chosen.c.idempotency_key)))
        .values(
            state="running",
            attempts=o.c.attempts + 1,
            claimed_by=sa.bindparam("worker"),
            claimed_until=sa.bindparam("until"),
            updated_at=now,
        )
        .returning(*o.c)
    )


@cache
def succeed_held() -> ReturningUpdate[uuid.UUID]:
    """Rows a dispatcher still holds become ``succeeded``; returns their keys.

    Parameters: ``keys`` (a list), ``worker``, ``now``.
    """
    o = t.outbox
    return (
        sa.update(o)
        .where(
            o.c.idempotency_key.in_(sa.bindparam("keys", expanding=True)),
            o.c.state == "running",
            o.c.claimed_by == sa.bindparam("worker"),
        )
        .values(state="succeeded", last_error=None, **t.released(sa.bindparam("now")))
        .returning(o.c.idempotency_key)
    )


@cache
def reset_breakers() -> Update:
    """Failures in a row back to 0 for actions that succeeded (open breakers stay open).

    Parameters: ``actions`` (a list of ``(rule, action_index)``), ``now``.
    """
    b = t.action_breakers
    return (
        sa.update(b)
        .where(
            sa.tuple_(b.c.rule, b.c.action_index).in_(sa.bindparam("actions", expanding=True)),
            b.c.failures > 0,
            sa.not_(b.c.suspended),
        )
        .values(failures=0, updated_at=sa.bindparam("now"))
    )


@cache
def insert_firings(dialect: str) -> ReturningInsert[uuid.UUID]:
    """Insert firings, skipping ids stored before; returns the ids inserted."""
    return dialect_insert(dialect, t.firings).on_conflict_do_nothing().returning(t.firings.c.id)


@cache
def insert_outbox(dialect: str) -> ReturningInsert[uuid.UUID]:
    """Queue outbox rows, skipping keys queued before; returns the keys inserted."""
    insert = dialect_insert(dialect, t.outbox).on_conflict_do_nothing()
    return insert.returning(t.outbox.c.idempotency_key)
