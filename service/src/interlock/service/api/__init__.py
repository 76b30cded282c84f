"""Interlock's HTTP API (Litestar): events in, rules, firings, channels, keys, health.

:func:`create_app` builds the ASGI application around one running service's
:class:`~interlock.service.context.Services`; the guards in :mod:`.auth` protect the
routes with API keys (scopes ``read``, ``publish``, ``write``, ``admin``); errors are
RFC 9457 problem documents (:mod:`.errors`).
"""

from interlock.service.api.app import check_can_serve, create_app
from interlock.service.api.auth import (
    current_key,
    require_admin,
    require_publish,
    require_read,
    require_write,
)
from interlock.service.api.deps import ServicesDep

__all__ = [
    "ServicesDep",
    "check_can_serve",
    "create_app",
    "current_key",
    "require_admin",
    "require_publish",
    "require_read",
    "require_write",
]
