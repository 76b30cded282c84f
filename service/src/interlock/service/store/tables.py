"""The database schema: every table the store uses, as SQLAlchemy Core metadata.

The Alembic migrations in :mod:`interlock.service.migrations` create exactly this; a
contract test proves that autogenerate finds no difference on SQLite and PostgreSQL.

Identities that make replays harmless are constraints here, not conventions in code:

- ``firings.id`` is the deterministic UUID5 of the firing's identity (rule, key, window,
  status), so a replayed event inserts nothing;
- ``outbox.idempotency_key`` is ``uuid5(firing id, str(action index))``, unique with
  (``firing_id``, ``action_index``), so a firing's actions are queued once;
- ``runs.idempotency_key`` is unique, so an action retried after a crash starts one run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from interlock.sdk.vocabulary import CONNECTION_CHANGES, FIRING_STATUSES, RUN_STATES
from interlock.service.store.records import ActionState

__all__ = [
    "ACTION_STATES",
    "ATTEMPT_OUTCOMES",
    "RUN_STATES",
    "UtcDateTime",
    "action_attempts",
    "action_breakers",
    "api_keys",
    "approvals",
    "connection_changes",
    "connections",
    "deployments",
    "engine_checkpoints",
    "firings",
    "metadata",
    "outbox",
    "released",
    "rule_versions",
    "rules",
    "runs",
    "work_queues",
]

ACTION_STATES: tuple[str, ...] = get_args(ActionState)
ATTEMPT_OUTCOMES: tuple[str, ...] = ("succeeded", "retry", "failed")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """An aware UTC instant on every database (SQLite keeps no offset: it stores UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the store; use UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _name(length: int = 200) -> sa.String:
    return sa.String(length)


def _states(column: str, states: tuple[str, ...]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{state}'" for state in states)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=column)


rules = sa.Table(
    "rules",
    metadata,
    sa.Column("name", _name(), primary_key=True),
    sa.Column("current_version", sa.Integer, nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

rule_versions = sa.Table(
    "rule_versions",
    metadata,
    sa.Column(
        "rule",
        _name(),
        sa.ForeignKey("rules.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("document", sa.Text, nullable=False, comment="dump_rules([rule])"),
    sa.Column("digest", sa.String(64), nullable=False, comment="sha256 of document"),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

firings = sa.Table(
    "firings",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("rule", _name(), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("window_start", UtcDateTime),
    sa.Column("window_end", UtcDateTime),
    sa.Column("event_ids", sa.JSON, nullable=False),
    sa.Column("expected", sa.Integer),
    sa.Column("arrived", sa.Integer),
    sa.Column("late", sa.Boolean, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("stored_at", UtcDateTime, nullable=False),
    _states("status", FIRING_STATUSES),
    sa.Index(None, "rule", "at"),
    sa.Index(None, "at"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("idempotency_key", sa.Uuid, primary_key=True),
    sa.Column(
        "firing_id", sa.Uuid, sa.ForeignKey("firings.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("action_index", sa.Integer, nullable=False),
    sa.Column("rule", _name(), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False, comment="the action's tag"),
    sa.Column("action", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("claimed_by", _name()),
    sa.Column("claimed_until", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("firing_id", "action_index"),
    _states("state", ACTION_STATES),
    sa.Index(None, "state", "next_attempt_at", "firing_id", "action_index"),
    sa.Index(None, "rule", "action_index", "state"),
)


action_attempts = sa.Table(
    "action_attempts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column(
        "action_key",
        sa.Uuid,
        sa.ForeignKey("outbox.idempotency_key", ondelete="CASCADE"),
        nullable=False,
        comment="the outbox row's idempotency key",
    ),
    sa.Column("firing_id", sa.Uuid, nullable=False),
    sa.Column("action_index", sa.Integer, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, comment="the row's attempts when claimed"),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("duration", sa.Float, comment="seconds; NULL: not measured"),
    sa.Column("worker", _name(), nullable=False, comment="the dispatcher that ran it"),
    _states("outcome", ATTEMPT_OUTCOMES),
    sa.Index(None, "firing_id", "action_index", "attempt"),
    sa.Index(None, "action_key"),
)
"""Each execution of an outbox action that ended (deferrals, which were not attempted,
excluded): written with the outcome by ``Outbox.finish_many``, in its transaction."""


def released(now: object) -> dict[str, object]:
    """The claim columns of an outbox row no dispatcher holds (any more), as of ``now``.

    Every statement that ends or drops a claim writes these; ``now`` is a time or a
    bound parameter.
    """
    return {"claimed_by": None, "claimed_until": None, "updated_at": now}


engine_checkpoints = sa.Table(
    "engine_checkpoints",
    metadata,
    sa.Column("name", _name(), primary_key=True, comment="a shard or consumer name"),
    sa.Column("state", sa.LargeBinary, nullable=False, comment="Engine.export_state()"),
    sa.Column("stream_sequence", sa.BigInteger, nullable=False),
    sa.Column("saved_at", UtcDateTime, nullable=False),
    sa.Column(
        "epoch",
        sa.BigInteger,
        nullable=False,
        server_default="0",
        comment="the lease revision of the owner that may write it (0: no lease)",
    ),
)

connections = sa.Table(
    "connections",
    metadata,
    sa.Column("name", _name(), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False, comment="airflow, prefect, s3, ..."),
    sa.Column("settings", sa.JSON, nullable=False, comment="what is not secret (shown)"),
    sa.Column("secret", sa.LargeBinary, nullable=False, comment="Fernet token of the secrets"),
    sa.Column("secret_fields", sa.JSON, nullable=False, comment="names of the secrets, no values"),
    sa.Column("version", sa.Integer, nullable=False, comment="+1 on every change"),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
"""Named connections; channels are its ``apprise`` rows (migrated from ``channels``)."""

connection_changes = sa.Table(
    "connection_changes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("name", _name(), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("change", sa.String(16), nullable=False),
    sa.Column("fields", sa.JSON, nullable=False, comment="names of the fields given, no values"),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    _states("change", CONNECTION_CHANGES),
    sa.Index(None, "at"),
    sa.Index(None, "name", "at"),
)
"""Every change of a connection, by time (never a secret's value)."""

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", _name(), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False, unique=True),
    sa.Column("token_hash", sa.String(64), nullable=False, comment="sha256 hex of the token"),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime),
)

work_queues = sa.Table(
    "work_queues",
    metadata,
    sa.Column("name", _name(), primary_key=True),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("concurrency_limit", sa.Integer),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("name", _name(), primary_key=True),
    sa.Column("target", sa.JSON, nullable=False),
    sa.Column("queue", _name(), sa.ForeignKey("work_queues.name"), nullable=False),
    sa.Column("schedule", sa.String(200), comment="cron expression, or null"),
    sa.Column("schedule_enabled", sa.Boolean, nullable=False),
    sa.Column("parameters", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("policy", sa.JSON, comment="retries, retry_delay, backoff, timeout; null: none"),
    sa.Column("concurrency_limit", sa.Integer, comment="its runs at once, or null"),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("deployment", _name(), sa.ForeignKey("deployments.name"), nullable=False, index=True),
    sa.Column("queue", _name(), sa.ForeignKey("work_queues.name"), nullable=False),
    sa.Column("parameters", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("idempotency_key", _name(), unique=True),
    sa.Column("scheduled_at", UtcDateTime, nullable=False),
    sa.Column("started_at", UtcDateTime),
    sa.Column("ended_at", UtcDateTime),
    sa.Column("log_path", sa.Text),
    sa.Column("message", sa.Text),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
    sa.Column("remote_id", sa.String(500), comment="the remote run's id (airflow, prefect)"),
    sa.Column("remote_url", sa.Text, comment="where the remote run is shown"),
    sa.Column("remote_state", sa.String(64), comment="the remote system's own word"),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    _states("state", RUN_STATES),
    sa.Index(None, "queue", "state", "scheduled_at"),
)


approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True, comment="the approve row's idempotency key"),
    sa.Column(
        "firing_id", sa.Uuid, sa.ForeignKey("firings.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("rule", _name(), nullable=False),
    sa.Column("action_index", sa.Integer, nullable=False),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("requested_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime),
    sa.Column("on_timeout", sa.String(16), nullable=False),
    sa.Column("decision", sa.String(16)),
    sa.Column("decided_by", _name()),
    sa.Column("decided_at", UtcDateTime),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("sent_at", UtcDateTime, comment="when its request went out; NULL: not (yet)"),
    sa.Column("request_error", sa.Text, comment="why its request last failed to go out"),
    sa.UniqueConstraint("firing_id", "action_index"),
    _states("on_timeout", ("reject", "approve")),
    sa.CheckConstraint(
        "decision IS NULL OR decision IN ('approved', 'rejected', 'expired')", name="decision"
    ),
    sa.Index(None, "decision", "expires_at"),
)

action_breakers = sa.Table(
    "action_breakers",
    metadata,
    sa.Column("rule", _name(), primary_key=True),
    sa.Column("action_index", sa.Integer, primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False, comment="failed attempts in a row"),
    sa.Column("suspended", sa.Boolean, nullable=False),
    sa.Column("suspended_at", UtcDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

rules_dir_applied = sa.Table(
    "rules_dir_applied",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True, comment="SHA-256 of its rules"),
    sa.Column("replica", _name(), nullable=False, comment="the replica that applied it"),
    sa.Column("applied_at", UtcDateTime, nullable=False),
)
"""Each content of the rules directory applied by a replica (issue 19): applied once."""

adapter_checkpoints = sa.Table(
    "adapter_checkpoints",
    metadata,
    sa.Column("adapter", _name(), primary_key=True),
    sa.Column("checkpoint", sa.JSON, nullable=False, comment="the adapter's last cursor"),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
"""Adapter poll cursors of replicas (issue 19), so they follow the ``scheduler`` lease."""
