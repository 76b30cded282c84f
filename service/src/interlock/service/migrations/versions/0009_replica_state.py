"""Replicas' shared state (issue 19): the rules directory applied once, adapter cursors.

``rules_dir_applied`` records the digest of each content of the rules directory a
replica applied (the owner of the engine, when it takes it), so a restart or a failover
does not apply it again over the rules changed through the API. ``adapter_checkpoints``
keeps each polling adapter's cursor, so the replica that takes over the ``scheduler``
lease continues where the other stopped.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    op.create_table(
        "rules_dir_applied",
        sa.Column("digest", sa.String(64), nullable=False, comment="SHA-256 of its rules"),
        sa.Column("replica", sa.String(200), nullable=False, comment="the replica that applied it"),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_rules_dir_applied")),
    )
    op.create_table(
        "adapter_checkpoints",
        sa.Column("adapter", sa.String(200), nullable=False),
        sa.Column("checkpoint", sa.JSON(), nullable=False, comment="the adapter's last cursor"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("adapter", name=op.f("pk_adapter_checkpoints")),
    )


def downgrade() -> None:
    """Downgrade the schema (the records and cursors are forgotten)."""
    op.drop_table("adapter_checkpoints")
    op.drop_table("rules_dir_applied")
