"""``GET /api/windows``: the windows the engine watches now (what the SLA board shows).

Each absence rule keeps, per key, its current window (``pending``: not judged yet, with
its deadline, the time it is judged — ``due``, the deadline plus the grace — and the
events expected and arrived so far) and each miss not resolved yet (``missed``). The
engine answers from memory (``services.rules.windows``); nothing is read from the
database. Windows of paused, disabled and broken rules are not watched, so not listed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get
from litestar.params import QueryParameter

from interlock.rules.engine.trigger_state import WindowView
from interlock.service.api.auth import require_read
from interlock.service.api.deps import ServicesDep

__all__ = ["WindowController"]

_MAX_LIMIT = 100_000


class WindowController(Controller):
    """SLA windows, nearest due first."""

    path = "/api/windows"
    tags = ["rules"]  # noqa: RUF012 - Litestar's declared attribute

    @get("/", guards=[require_read], summary="List the windows the rules watch")
    async def list_windows(
        self,
        services: ServicesDep,
        *,
        rule: Annotated[str | None, QueryParameter(description="Only this rule's.")] = None,
        key: Annotated[str | None, QueryParameter(description="Only this key's.")] = None,
        window_state: Annotated[
            Literal["pending", "missed"] | None,
            QueryParameter(
                name="state", description="pending (not judged yet) or missed (not resolved)."
            ),
        ] = None,
        limit: Annotated[
            int, QueryParameter(ge=1, le=_MAX_LIMIT, description="At most this many.")
        ] = 1000,
    ) -> list[WindowView]:
        """Pending windows and unresolved misses, the nearest ``due`` first.

        ``due`` is when a window is judged (its deadline plus the rule's grace); times are
        event time (UTC).
        """
        found = [
            window
            for window in services.rules.windows(rule)
            if (key is None or window.key == key)
            and (window_state is None or window.state == window_state)
        ]
        found.sort(key=lambda window: (window.due, window.rule, window.key))
        return found[:limit]
