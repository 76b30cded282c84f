"""Each attempt of an action is kept: ``action_attempts``.

The outbox keeps an action's attempt count and its last error only; the web UI's firing
page shows every attempt (when it started, how it ended, its error, how long it took).
``Outbox.finish_many`` writes a row per execution that ended, in the transaction that
records the outcome. Actions attempted before this revision have no rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    op.create_table(
        "action_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "action_key", sa.Uuid(), nullable=False, comment="the outbox row's idempotency key"
        ),
        sa.Column("firing_id", sa.Uuid(), nullable=False),
        sa.Column("action_index", sa.Integer(), nullable=False),
        sa.Column(
            "attempt", sa.Integer(), nullable=False, comment="the row's attempts when claimed"
        ),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration", sa.Float(), nullable=True, comment="seconds; NULL: not measured"),
        sa.Column(
            "worker", sa.String(length=200), nullable=False, comment="the dispatcher that ran it"
        ),
        sa.CheckConstraint(
            "outcome IN ('succeeded', 'retry', 'failed')", name=op.f("ck_action_attempts_outcome")
        ),
        sa.ForeignKeyConstraint(
            ["action_key"],
            ["outbox.idempotency_key"],
            name=op.f("fk_action_attempts_action_key_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_attempts")),
    )
    op.create_index(
        op.f("ix_action_attempts_action_key"), "action_attempts", ["action_key"], unique=False
    )
    op.create_index(
        op.f("ix_action_attempts_firing_id_action_index_attempt"),
        "action_attempts",
        ["firing_id", "action_index", "attempt"],
        unique=False,
    )


def downgrade() -> None:
    """Downgrade the schema (the attempts are forgotten)."""
    op.drop_index(
        op.f("ix_action_attempts_firing_id_action_index_attempt"), table_name="action_attempts"
    )
    op.drop_index(op.f("ix_action_attempts_action_key"), table_name="action_attempts")
    op.drop_table("action_attempts")
