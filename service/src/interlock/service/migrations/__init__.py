"""The database migrations (Alembic), shipped inside the package and run from code.

:meth:`interlock.service.store.Store.migrate` upgrades a database to :func:`head` with
no ``alembic.ini``: :func:`alembic_config` builds the configuration. The same options
(:func:`context_options`) drive ``env.py`` and the test that proves autogenerate finds no
difference between :data:`~interlock.service.store.tables.metadata` and a migrated
database.

To write the next revision, migrate a scratch database and let Alembic compare::

    from alembic import command
    from interlock.service.migrations import alembic_config

    command.upgrade(alembic_config("sqlite:///scratch.db"), "head")
    command.revision(alembic_config("sqlite:///scratch.db"), "what changed", autogenerate=True)

then read the new file in ``versions/`` and correct what autogenerate cannot know.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from interlock.service.store.tables import UtcDateTime, metadata

__all__ = ["alembic_config", "context_options", "current", "head", "upgrade"]

SCRIPT_LOCATION = Path(__file__).parent
VERSION_TABLE = "interlock_alembic_version"
"""Alembic's bookkeeping table; prefixed, since the database may be shared."""


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for the shipped scripts (and ``url``, for the command line).

    When upgrading from code, put a connection in ``config.attributes["connection"]``
    instead of giving a URL (see :func:`upgrade`).
    """
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def context_options(dialect: str) -> dict[str, Any]:
    """Options for ``MigrationContext.configure`` shared by ``env.py`` and the tests."""
    return {
        "target_metadata": metadata,
        "version_table": VERSION_TABLE,
        "include_name": _include_name,
        "render_item": _render_item,
        "render_as_batch": dialect == "sqlite",  # SQLite alters tables by copying them
        "compare_type": True,
        "compare_server_default": True,
        "user_module_prefix": "sa.",
    }


def head() -> str:
    """The newest revision shipped."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:  # pragma: no cover - the package ships revisions
        raise RuntimeError("no migration scripts found")
    return revision


def current(connection: sa.Connection) -> str | None:
    """The revision the database is at; ``None`` if it was never migrated."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(connection: sa.Connection, revision: str = "head") -> None:
    """Upgrade the database behind ``connection`` (inside its transaction) to ``revision``."""
    from alembic import command  # noqa: PLC0415 - keep `import interlock.service` light

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    # Other tables may live in the same database (APScheduler's job store, say).
    if type_ == "table":
        return name in metadata.tables
    return True


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False
