"""Approvals and circuit breakers; outbox states for approval steps.

- ``approvals``: one row per ``approve`` action executed (its id is the action's
  idempotency key), with its token, deadline and decision;
- ``action_breakers``: failed attempts in a row per (rule, action index), and whether the
  action is suspended, so the circuit breaker survives restarts;
- ``outbox.state`` may also be ``waiting`` (an approval step waiting for its decision),
  ``held`` (an action after such a step) and ``cancelled`` (rejected or expired).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_STATES = "state IN ('pending', 'running', 'succeeded', 'failed', 'suspended')"
_NEW_STATES = (
    "state IN ('pending', 'running', 'succeeded', 'failed', 'suspended', 'waiting', "
    "'held', 'cancelled')"
)


def upgrade() -> None:
    """Upgrade the schema."""
    op.create_table(
        "action_breakers",
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("action_index", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False, comment="failed attempts in a row"),
        sa.Column("suspended", sa.Boolean(), nullable=False),
        sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rule", "action_index", name=op.f("pk_action_breakers")),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Uuid(), nullable=False, comment="the approve row's idempotency key"),
        sa.Column("firing_id", sa.Uuid(), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("action_index", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("on_timeout", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "decision IS NULL OR decision IN ('approved', 'rejected', 'expired')",
            name=op.f("ck_approvals_decision"),
        ),
        sa.CheckConstraint(
            "on_timeout IN ('reject', 'approve')", name=op.f("ck_approvals_on_timeout")
        ),
        sa.ForeignKeyConstraint(
            ["firing_id"],
            ["firings.id"],
            name=op.f("fk_approvals_firing_id_firings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
        sa.UniqueConstraint(
            "firing_id", "action_index", name=op.f("uq_approvals_firing_id_action_index")
        ),
        sa.UniqueConstraint("token", name=op.f("uq_approvals_token")),
    )
    op.create_index(
        op.f("ix_approvals_decision_expires_at"), "approvals", ["decision", "expires_at"]
    )
    _replace_state_check(_NEW_STATES)


def downgrade() -> None:
    """Downgrade the schema (actions in the new states become ``failed``)."""
    op.execute("UPDATE outbox SET state = 'failed' WHERE state IN ('waiting', 'held', 'cancelled')")
    _replace_state_check(_OLD_STATES)
    op.drop_index(op.f("ix_approvals_decision_expires_at"), table_name="approvals")
    op.drop_table("approvals")
    op.drop_table("action_breakers")


def _replace_state_check(condition: str) -> None:
    # SQLite cannot alter a constraint: batch mode copies the table (its CHECK
    # constraints are reflected by name).
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint(op.f("ck_outbox_state"), type_="check")
        batch.create_check_constraint(op.f("ck_outbox_state"), sa.text(condition))
