"""The engine checkpoint carries its owner's epoch: ``engine_checkpoints.epoch``.

Scale-out (issue 19, step 1): the replica that holds the engine's lease claims the
checkpoint row with the lease's revision, its epoch; every batch it stores checks the
row (``SELECT ... FOR UPDATE``) in the batch's own transaction, so a replica that lost
its lease cannot commit. A row claimed by no lease (one server, no replicas) is epoch 0;
an ``epoch``-only row (no checkpoint saved yet) has an empty ``state``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    op.add_column(
        "engine_checkpoints",
        sa.Column(
            "epoch",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="the lease revision of the owner that may write it (0: no lease)",
        ),
    )


def downgrade() -> None:
    """Downgrade the schema (the epoch is forgotten; epoch-only rows are removed)."""
    op.execute("DELETE FROM engine_checkpoints WHERE length(state) = 0")
    with op.batch_alter_table("engine_checkpoints") as batch:
        batch.drop_column("epoch")
