"""``GET /api/adapters``: the adapters the service polls, and how their polls go.

Scope ``read``. Each entry is an :class:`~interlock.service.adapter_status.AdapterStatus`:
its kind and interval, when it last polled and last succeeded, its lag (seconds since the
last successful poll), failures in a row and the last error, when it polls next. Adapters
run standalone (``interlock adapter run``) are not the service's and are not listed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Controller, get

from interlock.service.adapter_status import AdapterStatus
from interlock.service.api.auth import require_read
from interlock.service.api.deps import ServicesDep

__all__ = ["AdapterController"]


class AdapterController(Controller):
    """In-service adapters."""

    path = "/api/adapters"
    tags = ["adapters"]  # noqa: RUF012 - Litestar's declared attribute

    @get("/", guards=[require_read], summary="List the adapters the service polls")
    async def list_adapters(self, services: ServicesDep) -> list[AdapterStatus]:
        """Every adapter of ``adapters_file`` the service polls, by name."""
        return services.adapters.statuses(datetime.now(UTC))  # polls run in real time
