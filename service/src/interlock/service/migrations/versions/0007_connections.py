"""Named connections with encrypted secrets, and their history; channels become connections.

Issue 20: ``connections`` holds named, typed connections (``airflow``, ``prefect``,
``s3``, ``database``, ``http``, ``apprise``): their settings as JSON, their secrets as one
Fernet token. ``connection_changes`` lists every change by time (field names only).
Channels were names for Apprise URLs; each is moved to an ``apprise`` connection of the
same name, its token unchanged (an ``apprise`` connection's secret is its bare URL, the
form a channel's token holds), so nothing needs the key here and every rule naming a
channel keeps working. The downgrade moves the ``apprise`` connections back.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHANGES = "change IN ('created', 'updated', 'rotated', 'removed')"


def _channels() -> sa.Table:
    return sa.Table(
        "channels",
        sa.MetaData(),
        sa.Column("name", sa.String(200)),
        sa.Column("scheme", sa.String(64)),
        sa.Column("secret", sa.LargeBinary()),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )


def _connections() -> sa.Table:
    return sa.Table(
        "connections",
        sa.MetaData(),
        sa.Column("name", sa.String(200)),
        sa.Column("kind", sa.String(16)),
        sa.Column("settings", sa.JSON()),
        sa.Column("secret", sa.LargeBinary()),
        sa.Column("secret_fields", sa.JSON()),
        sa.Column("version", sa.Integer()),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )


def upgrade() -> None:
    """Upgrade the schema; move every channel to an ``apprise`` connection."""
    op.create_table(
        "connections",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind", sa.String(length=16), nullable=False, comment="airflow, prefect, s3, ..."
        ),
        sa.Column("settings", sa.JSON(), nullable=False, comment="what is not secret (shown)"),
        sa.Column(
            "secret", sa.LargeBinary(), nullable=False, comment="Fernet token of the secrets"
        ),
        sa.Column(
            "secret_fields", sa.JSON(), nullable=False, comment="names of the secrets, no values"
        ),
        sa.Column("version", sa.Integer(), nullable=False, comment="+1 on every change"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_connections")),
    )
    op.create_table(
        "connection_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column(
            "fields", sa.JSON(), nullable=False, comment="names of the fields given, no values"
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_CHANGES, name=op.f("ck_connection_changes_change")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_changes")),
    )
    op.create_index(op.f("ix_connection_changes_at"), "connection_changes", ["at"], unique=False)
    op.create_index(
        op.f("ix_connection_changes_name_at"),
        "connection_changes",
        ["name", "at"],
        unique=False,
    )
    bind = op.get_bind()
    channels = _channels()
    rows = bind.execute(sa.select(channels)).all()
    if rows:
        bind.execute(
            sa.insert(_connections()),
            [
                {
                    "name": row.name,
                    "kind": "apprise",
                    "settings": {"scheme": row.scheme},
                    "secret": row.secret,
                    "secret_fields": ["url"],
                    "version": 1,
                    "created_at": row.created_at,
                    "updated_at": row.updated_at,
                }
                for row in rows
            ],
        )
    op.drop_table("channels")


def downgrade() -> None:
    """Downgrade the schema: ``apprise`` connections back to channels, the rest forgotten."""
    op.create_table(
        "channels",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("scheme", sa.String(length=64), nullable=False, comment="shown in redacted form"),
        sa.Column("secret", sa.LargeBinary(), nullable=False, comment="Fernet token of the URL"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_channels")),
    )
    bind = op.get_bind()
    connections = _connections()
    rows = bind.execute(sa.select(connections).where(connections.c.kind == "apprise")).all()
    if rows:
        bind.execute(
            sa.insert(_channels()),
            [
                {
                    "name": row.name,
                    "scheme": (row.settings or {}).get("scheme", "?"),
                    "secret": row.secret,
                    "created_at": row.created_at,
                    "updated_at": row.updated_at,
                }
                for row in rows
            ],
        )
    op.drop_index(op.f("ix_connection_changes_name_at"), table_name="connection_changes")
    op.drop_index(op.f("ix_connection_changes_at"), table_name="connection_changes")
    op.drop_table("connection_changes")
    op.drop_table("connections")
