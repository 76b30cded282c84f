"""The dependency every handler may ask for: ``services: ServicesDep``.

``ServicesDep`` marks a handler parameter for Litestar's name-based injection (plain
``services: Services`` works but is deprecated by Litestar 2.23+, which warns)::

    @get("/api/things")
    async def things(self, services: ServicesDep) -> list[Thing]: ...
"""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency

from interlock.service.context import Services

__all__ = ["ServicesDep"]

ServicesDep: TypeAlias = NamedDependency[Services]
"""The running service's :class:`Services`, injected by name (``services``)."""
