"""Named connections as executors see them: a kind, its settings and its secrets.

The service keeps connections (``prod-airflow``, ``landing-s3``, ``tickets``) with their
secrets encrypted; an action names one (``call("airflow_trigger_dag",
connection="prod-airflow", ...)``) and its executor resolves the name **each time it
runs**, through :attr:`interlock.sdk.executors.ExecutorContext.connections`. So a
credential rotated in the service is used by the next call, without a restart.

An interface, like :mod:`interlock.sdk.executors`: plugins depend on it and on nothing
of the service. :class:`ResolvedConnection` holds secrets in clear: an executor uses
them and never puts them into a message, a result or a log line (its ``repr`` hides
them).

Kinds and their fields (``settings`` are shown by the API; ``secrets`` never are):

============  =================================================  ==========================
kind          settings                                           secrets
============  =================================================  ==========================
``airflow``   ``url``, ``api_version`` (``v2``/``v1``),          ``password``, ``token``
              ``username``
``prefect``   ``url`` (the API URL, ``http://host:4200/api``)    ``api_key``, ``auth_string``
``s3``        ``endpoint_url``, ``region``, ``access_key_id``,   ``secret_access_key``,
              ``role_arn``                                       ``session_token``
``database``  ``url`` (its password hidden)                      ``url``
``http``      ``base_url``, ``header_names``                     ``headers``, ``token``
``apprise``   ``scheme``                                         ``url``
============  =================================================  ==========================
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, get_args

import msgspec

from interlock.sdk.errors import InterlockError

__all__ = [
    "CONNECTION_KINDS",
    "ConnectionKind",
    "ConnectionLookup",
    "ConnectionNotFound",
    "ResolvedConnection",
    "no_connections",
]

ConnectionKind = Literal["airflow", "prefect", "s3", "database", "http", "apprise"]
CONNECTION_KINDS: tuple[ConnectionKind, ...] = get_args(ConnectionKind)


class ConnectionNotFound(InterlockError, LookupError):
    """No connection of that name (or not of the kind the action needs).

    Attributes:
        name: The connection's name.
        reason: Why it cannot be used.
    """

    def __init__(self, name: str, reason: str = "does not exist") -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"connection {name!r} {reason}")


class ResolvedConnection(msgspec.Struct, frozen=True, kw_only=True):
    """One connection with its secrets in clear, as an executor uses it.

    Attributes:
        name: Its name.
        kind: Its kind (see the module's table).
        version: Goes up by one with every change (a rotation too).
        settings: What is not secret (URLs, a region, a user name).
        secrets: Passwords, tokens, keys; ``headers`` of an ``http`` connection is an
            object of header names to values.
    """

    name: str
    kind: ConnectionKind
    version: int
    settings: dict[str, Any]
    secrets: dict[str, Any]

    def __repr__(self) -> str:
        return (
            f"ResolvedConnection(name={self.name!r}, kind={self.kind!r}, "
            f"version={self.version}, settings={self.settings!r}, "
            f"secrets={sorted(self.secrets)!r})"
        )

    def require(self, kind: ConnectionKind) -> ResolvedConnection:
        """This connection, if it is of ``kind``.

        Raises:
            ConnectionNotFound: it is of another kind.
        """
        if self.kind != kind:
            raise ConnectionNotFound(self.name, f"is of kind {self.kind}, not {kind}")
        return self


class ConnectionLookup(Protocol):
    """Resolves connection names; the service gives executors one."""

    async def resolve(self, name: str) -> ResolvedConnection:
        """The connection ``name`` as it is now (cached briefly, dropped on change).

        Raises:
            ConnectionNotFound: there is none.
            InterlockError: it cannot be read now (the host's store failed, its key is
                missing); worth another attempt.
        """
        ...


def no_connections() -> ConnectionLookup:
    """A lookup that knows no connection (a host that keeps none)."""
    return _NoConnections()


class _NoConnections:
    async def resolve(self, name: str) -> ResolvedConnection:
        raise ConnectionNotFound(name, "does not exist (this host keeps no connections)")
