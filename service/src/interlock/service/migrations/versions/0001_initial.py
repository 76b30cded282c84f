"""The initial schema.

Rules and their versions, firings, the action outbox, engine checkpoints, notification
channels, API keys, work queues, deployments and runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column(
            "token_hash", sa.String(length=64), nullable=False, comment="sha256 hex of the token"
        ),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_table(
        "channels",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("scheme", sa.String(length=64), nullable=False, comment="shown in redacted form"),
        sa.Column("secret", sa.LargeBinary(), nullable=False, comment="Fernet token of the URL"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_channels")),
    )
    op.create_table(
        "engine_checkpoints",
        sa.Column(
            "name", sa.String(length=200), nullable=False, comment="a shard or consumer name"
        ),
        sa.Column("state", sa.LargeBinary(), nullable=False, comment="Engine.export_state()"),
        sa.Column("stream_sequence", sa.BigInteger(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_engine_checkpoints")),
    )
    op.create_table(
        "firings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_ids", sa.JSON(), nullable=False),
        sa.Column("expected", sa.Integer(), nullable=True),
        sa.Column("arrived", sa.Integer(), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('fired', 'resolved')", name=op.f("ck_firings_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firings")),
    )
    op.create_index(op.f("ix_firings_at"), "firings", ["at"])
    op.create_index(op.f("ix_firings_rule_at"), "firings", ["rule", "at"])
    op.create_table(
        "rules",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rules")),
    )
    op.create_table(
        "work_queues",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_work_queues")),
    )
    op.create_table(
        "deployments",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("queue", sa.String(length=200), nullable=False),
        sa.Column(
            "schedule", sa.String(length=200), nullable=True, comment="cron expression, or null"
        ),
        sa.Column("schedule_enabled", sa.Boolean(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue"], ["work_queues.name"], name=op.f("fk_deployments_queue_work_queues")
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_deployments")),
    )
    op.create_table(
        "outbox",
        sa.Column("idempotency_key", sa.Uuid(), nullable=False),
        sa.Column("firing_id", sa.Uuid(), nullable=False),
        sa.Column("action_index", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False, comment="the action's tag"),
        sa.Column("action", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'running', 'succeeded', 'failed', 'suspended')",
            name=op.f("ck_outbox_state"),
        ),
        sa.ForeignKeyConstraint(
            ["firing_id"],
            ["firings.id"],
            name=op.f("fk_outbox_firing_id_firings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("idempotency_key", name=op.f("pk_outbox")),
        sa.UniqueConstraint(
            "firing_id", "action_index", name=op.f("uq_outbox_firing_id_action_index")
        ),
    )
    op.create_index(
        op.f("ix_outbox_rule_action_index_state"), "outbox", ["rule", "action_index", "state"]
    )
    op.create_index(op.f("ix_outbox_state_next_attempt_at"), "outbox", ["state", "next_attempt_at"])
    op.create_table(
        "rule_versions",
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False, comment="dump_rules([rule])"),
        sa.Column("digest", sa.String(length=64), nullable=False, comment="sha256 of document"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule"], ["rules.name"], name=op.f("fk_rule_versions_rule_rules"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("rule", "version", name=op.f("pk_rule_versions")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("deployment", sa.String(length=200), nullable=False),
        sa.Column("queue", sa.String(length=200), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("log_path", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('scheduled', 'pending', 'running', 'completed', 'failed', "
            "'cancelled', 'crashed')",
            name=op.f("ck_runs_state"),
        ),
        sa.ForeignKeyConstraint(
            ["deployment"], ["deployments.name"], name=op.f("fk_runs_deployment_deployments")
        ),
        sa.ForeignKeyConstraint(
            ["queue"], ["work_queues.name"], name=op.f("fk_runs_queue_work_queues")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_runs_idempotency_key")),
    )
    op.create_index(op.f("ix_runs_deployment"), "runs", ["deployment"])
    op.create_index(
        op.f("ix_runs_queue_state_scheduled_at"), "runs", ["queue", "state", "scheduled_at"]
    )


def downgrade() -> None:
    """Downgrade the schema."""
    op.drop_index(op.f("ix_runs_queue_state_scheduled_at"), table_name="runs")
    op.drop_index(op.f("ix_runs_deployment"), table_name="runs")
    op.drop_table("runs")
    op.drop_table("rule_versions")
    op.drop_index(op.f("ix_outbox_state_next_attempt_at"), table_name="outbox")
    op.drop_index(op.f("ix_outbox_rule_action_index_state"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("deployments")
    op.drop_table("work_queues")
    op.drop_table("rules")
    op.drop_index(op.f("ix_firings_rule_at"), table_name="firings")
    op.drop_index(op.f("ix_firings_at"), table_name="firings")
    op.drop_table("firings")
    op.drop_table("engine_checkpoints")
    op.drop_table("channels")
    op.drop_table("api_keys")
