"""Alembic's environment: migrate the connection given in code, or a URL's database.

:func:`interlock.service.migrations.upgrade` hands a connection in
``config.attributes["connection"]``; the command line (see the package docstring) gives
``sqlalchemy.url`` and this opens it with the store's own async engine.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context

from interlock.service.migrations import context_options
from interlock.service.store.database import Database


def run_migrations(connection: sa.Connection) -> None:
    """Run the migrations on ``connection``."""
    context.configure(connection=connection, **context_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_at(url: str) -> None:
    """Open ``url`` with the store's engine and run the migrations there."""
    database = Database(url)
    try:
        async with database.transaction() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await database.dispose()


def main() -> None:
    """Migrate what the configuration says."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("give a connection in config.attributes or sqlalchemy.url")
    if context.is_offline_mode():
        dialect = sa.engine.make_url(url).get_backend_name()
        context.configure(url=url, literal_binds=True, **context_options(dialect))
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(run_migrations_at(url))


main()
