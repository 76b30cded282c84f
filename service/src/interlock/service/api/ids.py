"""Ids in paths and queries: the whole id, or a unique prefix of it (git's and docker's way).

``GET /api/firings/1f2e3d4c`` finds the firing whose id starts ``1f2e3d4c`` (at least four
hexadecimal digits, see :mod:`interlock.service.store.ids`). A prefix no id starts with
is 404 saying so; one several start with is 400 listing them; text that is no id is 404
saying what an id is (Litestar's ``{id:uuid}`` answered a bare ``Not Found``).
"""

from __future__ import annotations

import uuid

from interlock.service.context import Services
from interlock.service.store import NotFound

__all__ = ["approval_not_found", "firing_id", "run_id"]


async def firing_id(services: Services, text: str) -> uuid.UUID:
    """The id of the firing ``text`` names (whole or by a unique prefix)."""
    return await services.store.ids.resolve("firing", text)


async def run_id(services: Services, text: str) -> uuid.UUID:
    """The id of the run ``text`` names (whole or by a unique prefix)."""
    return await services.store.ids.resolve("run", text)


async def approval_not_found(services: Services, firing: uuid.UUID) -> NotFound:
    """What to say when ``firing`` has no approval: whether the firing exists, and then why."""
    try:
        found = await services.store.firings.get(firing)
    except NotFound as exc:
        return exc  # "no firing '...'"
    error = NotFound("approval", firing)
    error.args = (
        f"firing {firing} (rule {found.rule!r}) has no approval step: its approve action has "
        f"not run yet, or its rule has none (see interlock firings show {firing})",
    )
    return error
