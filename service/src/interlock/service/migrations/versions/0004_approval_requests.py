"""Approvals record whether their request went out, and why it did not.

- ``approvals.sent_at``: when the request reached Apprise; ``NULL`` while it has not (an
  approval counts as asked only once it was sent: only then can it expire, and its
  timeout runs from then);
- ``approvals.request_error``: why the last attempt to send it failed.

Approvals recorded before this revision count as sent unless their ``approve`` row is
still being tried or was given up (``pending``, ``running``, ``suspended``, ``failed``):
those are unsent, with the row's last error as their ``request_error``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNSENT = (
    "EXISTS (SELECT 1 FROM outbox WHERE outbox.idempotency_key = approvals.id "
    "AND outbox.state IN ('pending', 'running', 'suspended', 'failed'))"
)


def upgrade() -> None:
    """Upgrade the schema."""
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(
            sa.Column(
                "sent_at",
                sa.DateTime(timezone=True),
                nullable=True,
                comment="when its request went out; NULL: not (yet)",
            )
        )
        batch.add_column(
            sa.Column(
                "request_error",
                sa.Text(),
                nullable=True,
                comment="why its request last failed to go out",
            )
        )
    op.execute(f"UPDATE approvals SET sent_at = requested_at WHERE NOT {_UNSENT}")  # noqa: S608 - constant SQL
    op.execute(
        "UPDATE approvals SET request_error = (SELECT outbox.last_error FROM outbox "
        "WHERE outbox.idempotency_key = approvals.id) WHERE sent_at IS NULL"
    )


def downgrade() -> None:
    """Downgrade the schema (whether a request went out is forgotten)."""
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("request_error")
        batch.drop_column("sent_at")
