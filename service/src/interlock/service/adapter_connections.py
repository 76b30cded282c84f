"""Adapter sections naming a connection (``connection = "landing-s3"``), for in-service polls.

An adapter the service polls may name a connection instead of writing its credentials
in ``config/adapters.toml``; the connection gives the adapter these options (the
section's own options win):

==============================  ==========  =================================================
adapter kinds                   connection  options
==============================  ==========  =================================================
``s3.poll``, ``s3.sqs``         ``s3``      ``endpoint_url``, ``region``, ``aws_access_key_id``,
                                            ``aws_secret_access_key``, ``aws_session_token``
``db.freshness``, ``db.rows``,  ``database``  ``url``
``db.check``, ``db.listen``
``airflow.rest``                ``airflow``  ``url``, ``api_version``, ``username``,
                                            ``password``, ``token``
``prefect.events``              ``prefect``  ``api_url``, ``api_key``, ``auth_string``
==============================  ==========  =================================================

Adapters poll in the scheduler's threads; :class:`AdapterConnections` resolves a name
there through the store's cache on the service's event loop. Before each poll the
adapter's connection is resolved again: when its version changed (a rotation), the
adapter is rebuilt with the new options, so the next poll uses them without a restart.
"""

from __future__ import annotations

import asyncio
from typing import Any

from interlock.sdk.connections import ConnectionKind, ResolvedConnection
from interlock.service.store.connections import Connections

__all__ = ["AdapterConnections", "adapter_options"]

_FAMILIES: dict[str, ConnectionKind] = {
    "s3": "s3",
    "db": "database",
    "airflow": "airflow",
    "prefect": "prefect",
}


def adapter_options(kind: str, connection: ResolvedConnection) -> dict[str, Any]:
    """The options ``connection`` gives an adapter of ``kind`` (see the module's table).

    Raises:
        ValueError: adapters of ``kind`` take no connection, or not this one's form.
        ConnectionNotFound: the connection is of another kind (a ``LookupError``).
    """
    wanted = _FAMILIES.get(kind.partition(".")[0])
    if wanted is None:
        raise ValueError(
            f"adapters of kind {kind} take no connection yet (give their options, and "
            "secrets through *_env variables)"
        )
    connection.require(wanted)
    settings, secrets = connection.settings, connection.secrets
    if wanted == "s3":
        if settings.get("role_arn"):
            raise ValueError(
                f"connection {connection.name!r} gives a role: the S3 adapters take keys "
                "(or the machine's own credentials)"
            )
        options = {
            "endpoint_url": settings.get("endpoint_url"),
            "region": settings.get("region"),
            "aws_access_key_id": settings.get("access_key_id"),
            "aws_secret_access_key": secrets.get("secret_access_key"),
            "aws_session_token": secrets.get("session_token"),
        }
    elif wanted == "database":
        options = {"url": secrets.get("url")}
    elif wanted == "prefect":
        options = {
            "api_url": settings.get("url"),
            "api_key": secrets.get("api_key"),
            "auth_string": secrets.get("auth_string"),
        }
    else:
        options = {
            "url": settings.get("url"),
            "api_version": settings.get("api_version"),
            "username": settings.get("username"),
            "password": secrets.get("password"),
            "token": secrets.get("token"),
        }
    return {key: value for key, value in options.items() if value}


class AdapterConnections:
    """Resolves connections from the scheduler's threads, through the service's loop.

    Args:
        connections: The store's connections (their cache is shared with executors).
        loop: The service's event loop (never call from it: that would wait on itself).
        timeout: Seconds a resolution may take.
    """

    def __init__(
        self, connections: Connections, loop: asyncio.AbstractEventLoop, *, timeout: float = 30
    ) -> None:
        self._connections = connections
        self._loop = loop
        self._timeout = timeout

    def resolve(self, name: str) -> ResolvedConnection:
        """The connection ``name`` as it is now.

        Raises:
            ConnectionNotFound: there is none.
            StoreError: the store failed, or the secrets cannot be decrypted.
            TimeoutError: no answer within the timeout.
        """
        future = asyncio.run_coroutine_threadsafe(self._connections.resolve(name), self._loop)
        return future.result(self._timeout)
