"""``/api/connections``: named, typed connections whose secrets go in and never come out.

=========================================  ======  ===========================================
``POST /api/connections``                  admin   create or replace one (``name``, ``kind``,
                                                   ``fields``)
``GET /api/connections``                   read    every connection, secrets by name only
``GET /api/connections/history``           read    changes by time, newest first (``name``,
                                                   ``limit``)
``GET /api/connections/{name}``            read    one
``POST /api/connections/{name}/rotate``    admin   replace some secrets (``secrets``)
``POST /api/connections/{name}/test``      admin   does it answer, are the credentials
                                                   accepted?
``DELETE /api/connections/{name}``         admin   remove it
``POST /api/connections/reencrypt``        admin   re-encrypt every secret with the newest key
=========================================  ======  ===========================================

Every change is published as ``interlock.connection.updated`` (no secret) and kept in
the history.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from interlock.service.api.auth import require_admin, require_read
from interlock.service.api.deps import ServicesDep
from interlock.service.api.fields import Name
from interlock.service.connections.checks import CheckResult, check
from interlock.service.connections.events import publish_change
from interlock.service.store.connections import Connection, ConnectionChanged
from interlock.service.store.names import check_name

__all__ = ["ConnectionController", "NewConnection", "Reencrypted", "Rotation"]

_TEST_TIMEOUT = 10.0


class NewConnection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A connection to create, or to replace as a whole."""

    name: Name
    kind: Annotated[str, msgspec.Meta(description="airflow, prefect, s3, database, http, apprise")]
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    """Its settings and secrets together; the kind says which are secret."""

    def __repr__(self) -> str:
        return (
            f"NewConnection(name={self.name!r}, kind={self.kind!r}, fields={sorted(self.fields)})"
        )


class Rotation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """New values of some secrets (the others are kept)."""

    secrets: dict[str, Any]

    def __repr__(self) -> str:
        return f"Rotation(secrets={sorted(self.secrets)})"


class Reencrypted(msgspec.Struct, frozen=True, kw_only=True):
    """How many stored secrets were re-encrypted with the newest key."""

    reencrypted: int


class ConnectionController(Controller):
    """Named connections."""

    path = "/api/connections"
    tags = ["connections"]  # noqa: RUF012 - Litestar's declared attribute

    @post("/", guards=[require_admin], summary="Create or replace a connection")
    async def put_connection(
        self, data: JSONBody[NewConnection], services: ServicesDep
    ) -> Connection:
        """Create the connection, or replace every field of it; secrets are not returned."""
        check_name("connection", data.name)
        connection, changed = await services.store.connections.put(
            data.name, data.kind, data.fields
        )
        await publish_change(services.publisher, changed)
        return connection

    @get("/", guards=[require_read], summary="List connections")
    async def list_connections(
        self,
        services: ServicesDep,
        kind: Annotated[str | None, QueryParameter(description="Only this kind.")] = None,
    ) -> list[Connection]:
        """Every connection, by name: settings, and the names of its secrets."""
        return await services.store.connections.list(kind=kind)

    @get("/history", guards=[require_read], summary="Changes of connections, newest first")
    async def connection_history(
        self,
        services: ServicesDep,
        name: Annotated[str | None, QueryParameter(description="Only this one's.")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[ConnectionChanged]:
        """Every change (created, updated, rotated, removed), with the field names given."""
        return await services.store.connections.history(name, limit=limit)

    @get("/{name:str}", guards=[require_read], summary="Show a connection")
    async def get_connection(self, name: FromPath[str], services: ServicesDep) -> Connection:
        """One connection; 404 if none."""
        return await services.store.connections.get(name)

    @post("/{name:str}/rotate", guards=[require_admin], summary="Rotate a connection's secrets")
    async def rotate_connection(
        self, name: FromPath[str], data: JSONBody[Rotation], services: ServicesDep
    ) -> Connection:
        """Replace the secrets given, keep the rest; used by the next call everywhere."""
        connection, changed = await services.store.connections.rotate(name, data.secrets)
        await publish_change(services.publisher, changed)
        return connection

    @post(
        "/{name:str}/test",
        guards=[require_admin],
        summary="Check that a connection answers and accepts its credentials",
        status_code=200,
    )
    async def test_connection(self, name: FromPath[str], services: ServicesDep) -> CheckResult:
        """``ok``, or which step failed (``unreachable``, ``refused``, ``failed``) and why."""
        await services.store.connections.get(name)  # 404 first
        services.store.connections.forget(name)
        resolved = await services.store.connections.resolve(name)
        return await check(resolved, timeout=_TEST_TIMEOUT)

    @delete("/{name:str}", guards=[require_admin], summary="Remove a connection")
    async def delete_connection(self, name: FromPath[str], services: ServicesDep) -> None:
        """Remove the connection; 404 if none."""
        changed = await services.store.connections.delete(name)
        await publish_change(services.publisher, changed)

    @post(
        "/reencrypt",
        guards=[require_admin],
        summary="Re-encrypt every secret with the newest key",
        status_code=200,
    )
    async def reencrypt(self, services: ServicesDep) -> Reencrypted:
        """After a new ``secret_key`` (the old one in ``previous_secret_keys``)."""
        return Reencrypted(reencrypted=await services.store.connections.reencrypt())
