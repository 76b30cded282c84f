"""Deployment targets and run policies: deployments' policies, runs' attempts and remote runs.

Issue 20: a deployment may run on Airflow, Prefect or an HTTP endpoint. ``deployments``
gets ``policy`` (JSON: ``retries``, ``retry_delay``, ``backoff``, ``timeout``) and
``concurrency_limit`` (its runs at once, besides its queue's); ``runs`` gets ``attempt``
(a retry moves a failed attempt back to ``scheduled`` with +1), and ``remote_id``,
``remote_url``, ``remote_state``: the remote run it mirrors. Existing rows get an empty
policy, no limit and attempt 1.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(
            sa.Column(
                "policy", sa.JSON(), comment="retries, retry_delay, backoff, timeout; null: none"
            )
        )
        batch.add_column(
            sa.Column("concurrency_limit", sa.Integer(), comment="its runs at once, or null")
        )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("attempt", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(
            sa.Column(
                "remote_id", sa.String(length=500), comment="the remote run's id (airflow, prefect)"
            )
        )
        batch.add_column(
            sa.Column("remote_url", sa.Text(), comment="where the remote run is shown")
        )
        batch.add_column(
            sa.Column("remote_state", sa.String(length=64), comment="the remote system's own word")
        )


def downgrade() -> None:
    """Downgrade the schema (policies, attempts and remote runs are forgotten)."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("remote_state")
        batch.drop_column("remote_url")
        batch.drop_column("remote_id")
        batch.drop_column("attempt")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("concurrency_limit")
        batch.drop_column("policy")
