"""The watched database: its URL, a lazily connected engine, and what its errors mean.

:class:`Database` is shared by every SQLAlchemy adapter. It parses the URL when the
adapter is built (a malformed URL or a missing driver is an
:class:`~interlock.adapters.base.AdapterConfigError`), connects on first use, checks
that a table and its columns exist (:class:`~interlock.adapters.base.SourceRefused`
naming them), and sorts every database error into the two the runner acts on:

- :class:`~interlock.adapters.base.SourceUnavailable`: the server is down, starting,
  restarting, overloaded or unreachable; the connection dropped; a lock or timeout. The
  runner retries with backoff.
- :class:`~interlock.adapters.base.SourceRefused`: bad credentials, a missing database,
  table or column, a bad query, no permission. The runner stops: retrying cannot help.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine

from interlock.adapters.base import AdapterConfigError, SourceRefused, SourceUnavailable
from interlock.adapters.section_options import Options

__all__ = ["Database", "classify_error", "table_clause"]

_URL_EXAMPLE = "postgresql+psycopg://user:password@host:5432/warehouse or sqlite:///path/to.db"

# SQLSTATE classes (PostgreSQL, and the standard) that retrying can fix.
_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "55", "57", "58"})
# SQLite primary result codes that retrying can fix: BUSY, LOCKED, NOMEM, INTERRUPT,
# IOERR, FULL, PROTOCOL. Any other (ERROR: syntax or a missing table; CANTOPEN; PERM;
# READONLY) is a refusal.
_SQLITE_TRANSIENT = frozenset({5, 6, 7, 9, 10, 13, 15})
# Message fragments of transient failures, for drivers that give no SQLSTATE (a failed
# connection attempt in psycopg).
_TRANSIENT_TEXT = (
    "connection refused",
    "could not connect",
    "server closed the connection",
    "terminating connection",
    "connection reset",
    "connection timed out",
    "timeout expired",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "too many clients",
    "remaining connection slots",
    "could not translate host name",
    "no route to host",
    "network is unreachable",
)

_DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pymysql": "pymysql",
    "mysqldb": "mysqlclient",
    "pg8000": "pg8000",
    "oracledb": "oracledb",
    "pyodbc": "pyodbc",
}


def _driver_message(exc: BaseException) -> str:
    """The driver's own words, on one line, without SQLAlchemy's background link."""
    original = getattr(exc, "orig", None) or exc
    text = " ".join(str(original).split())
    return text if len(text) <= 500 else text[:499] + "…"


def classify_error(
    adapter: str, where: str, exc: BaseException
) -> SourceUnavailable | SourceRefused:
    """What a database error met while talking to ``where`` means for the runner."""
    reason = f"{where}: {_driver_message(exc)}"
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return SourceUnavailable(adapter, reason)
    original = getattr(exc, "orig", exc)
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5:
        if sqlstate[:2] in _TRANSIENT_CLASSES:
            return SourceUnavailable(adapter, reason)
        return SourceRefused(adapter, reason)
    sqlite_code = getattr(original, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        if sqlite_code & 0xFF in _SQLITE_TRANSIENT:
            return SourceUnavailable(adapter, reason)
        return SourceRefused(adapter, reason)
    lowered = reason.lower()
    if any(fragment in lowered for fragment in _TRANSIENT_TEXT):
        return SourceUnavailable(adapter, reason)
    if "fatal:" in lowered:  # the server answered and refused: credentials, database, role
        return SourceRefused(adapter, reason)
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)):
        return SourceUnavailable(adapter, reason)
    if isinstance(exc, (OSError, TimeoutError)):
        return SourceUnavailable(adapter, reason)
    return SourceRefused(adapter, reason)


class Database:
    """One database, as an adapter sees it: ``url`` (password hidden) and a lazy engine."""

    def __init__(self, adapter: str, url: str | URL, *, connect_timeout: float = 10.0) -> None:
        self.adapter = adapter
        try:
            self.url = sa.make_url(url)
        except sa_exc.ArgumentError as exc:
            raise AdapterConfigError(
                adapter, "url", f"is not a database URL ({exc}); use e.g. {_URL_EXAMPLE}"
            ) from exc
        self.backend = self.url.get_backend_name()
        self.display = self.url.render_as_string(hide_password=True)
        self._engine = self._create_engine(connect_timeout)
        self._checked: set[tuple[str | None, str, tuple[str, ...]]] = set()

    @classmethod
    def from_options(cls, options: Options) -> Database:
        """Read ``url`` and ``connect_timeout``."""
        url = options.string("url", example="postgresql+psycopg://watcher@db:5432/warehouse")
        timeout = options.duration("connect_timeout", "10s")
        return cls(options.adapter, url, connect_timeout=timeout.total_seconds())

    def _create_engine(self, connect_timeout: float) -> Engine:
        connect_args: dict[str, Any] = {}
        if self.backend == "postgresql":
            connect_args["connect_timeout"] = max(2, round(connect_timeout))
        elif self.backend == "mysql":
            connect_args["connect_timeout"] = max(1, round(connect_timeout))
        elif self.backend == "sqlite":
            connect_args["timeout"] = connect_timeout
        try:
            return sa.create_engine(self.url, pool_pre_ping=True, connect_args=connect_args)
        except sa_exc.NoSuchModuleError as exc:
            raise AdapterConfigError(
                self.adapter, "url", f"{self.url.drivername!r} is not a SQLAlchemy dialect ({exc})"
            ) from exc
        except ImportError as exc:
            driver = self.url.get_driver_name()
            package = _DRIVER_PACKAGES.get(driver, driver)
            raise AdapterConfigError(
                self.adapter,
                "url",
                f"needs the {driver} driver, which is not installed: pip install {package}",
            ) from exc

    @property
    def identity(self) -> str:
        """The database, independent of driver and password: part of deterministic ids."""
        url = self.url
        user = f"{url.username}@" if url.username else ""
        port = f":{url.port}" if url.port else ""
        return f"{self.backend}://{user}{url.host or ''}{port}/{url.database or ''}"

    @property
    def name(self) -> str:
        """The database's name, for default resource ids (a SQLite file's stem)."""
        database = self.url.database
        if self.backend == "sqlite":
            return Path(database).stem if database and database != ":memory:" else "sqlite"
        return database or self.backend

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection in a transaction that is rolled back (read-only on PostgreSQL).

        Any database error inside the block comes out as a :class:`SourceError`.
        """
        try:
            with self._engine.connect() as connection:
                if self.url.get_driver_name() in ("psycopg", "psycopg2"):
                    yield connection.execution_options(postgresql_readonly=True)
                else:
                    yield connection
        except sa_exc.SQLAlchemyError as exc:
            raise classify_error(self.adapter, self.display, exc) from exc

    def require(
        self, connection: Connection, table: str, schema: str | None, columns: tuple[str, ...]
    ) -> None:
        """Refuse unless ``table`` exists with ``columns`` (checked once per combination)."""
        key = (schema, table, columns)
        if key in self._checked:
            return
        qualified = f"{schema}.{table}" if schema else table
        inspector = sa.inspect(connection)
        if not inspector.has_table(table, schema=schema):
            raise SourceRefused(
                self.adapter, f"table {qualified!r} does not exist in {self.display}"
            )
        present = [column["name"] for column in inspector.get_columns(table, schema=schema)]
        for column in columns:
            if column not in present:
                raise SourceRefused(
                    self.adapter,
                    f"column {column!r} does not exist in table {qualified!r} of "
                    f"{self.display} (columns: {', '.join(present)})",
                )
        self._checked.add(key)

    def dispose(self) -> None:
        """Close pooled connections."""
        self._engine.dispose()


def table_clause(table: str, schema: str | None, *columns: str) -> sa.TableClause:
    """A lightweight, correctly quoted table with untyped columns (values come back raw)."""
    return sa.table(table, *(sa.column(name) for name in columns), schema=schema)
