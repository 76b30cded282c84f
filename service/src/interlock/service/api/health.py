"""``GET /api/health`` and ``GET /metrics``: both answer without an API key.

Health is for load balancers and ``interlock`` itself; metrics for Prometheus, which
scrapes without credentials by default. Neither reveals a secret: health says only
whether NATS and the database answer, metrics are counters.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, MediaType, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from interlock.service.api.deps import ServicesDep
from interlock.service.metrics import CONTENT_TYPE
from interlock.service.store import StoreError

__all__ = ["HealthController"]

_PING_TIMEOUT = 5.0


class HealthController(Controller):
    """Liveness of the service's dependencies, and its metrics."""

    tags = ["health"]  # noqa: RUF012 - Litestar's declared attribute

    @get("/api/health", summary="Health of NATS and the database")
    async def health(self, services: ServicesDep) -> Response[dict[str, Any]]:
        """Whether NATS and the database answer.

        200 ``{"status": "ok", "nats": "ok", "database": "ok"}`` when both do; 503 with
        ``"status": "unavailable"`` and the failing part's reason otherwise. One of several
        replicas adds ``"replica": {"name": ..., "engine": "owner" | "standby",
        "scheduler": ...}`` (a standby is healthy: it is ready to take over).
        """
        nats = "ok" if services.publisher.connected else "disconnected"
        try:
            await asyncio.wait_for(services.store.ping(), _PING_TIMEOUT)
            database = "ok"
        except TimeoutError:
            database = f"no answer within {_PING_TIMEOUT:g}s"
        except StoreError as exc:
            database = str(exc)
        healthy = nats == "ok" and database == "ok"
        body: dict[str, Any] = {
            "status": "ok" if healthy else "unavailable",
            "nats": nats,
            "database": database,
        }
        replica = services.replica() if services.replica is not None else None
        if replica is not None:
            body["replica"] = replica
        return Response(body, status_code=HTTP_200_OK if healthy else HTTP_503_SERVICE_UNAVAILABLE)

    @get("/metrics", summary="Prometheus metrics", media_type=MediaType.TEXT)
    async def metrics(self, services: ServicesDep) -> Response[bytes]:
        """The service's counters in Prometheus' text format 0.0.4 (no key needed)."""
        # Litestar adds the charset to a text/* type: give it the type without one.
        media_type = CONTENT_TYPE.replace("; charset=utf-8", "")
        return Response(await services.metrics.collect(), media_type=media_type)
