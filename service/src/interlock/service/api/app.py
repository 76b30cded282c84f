"""The application factory: :func:`create_app` and the pre-flight :func:`check_can_serve`.

::

    await check_can_serve(services)          # refuses a public bind without API keys
    app = create_app(services)               # a Litestar ASGI app; serve with uvicorn

Every handler may declare ``services: ServicesDep`` (:mod:`.deps`; a dependency
registered here). The
controllers of other parts of the service (approvals, deployments, runs, queues) are
included when their modules exist; once a module exists, any error importing it fails
the app loudly. OpenAPI is served at ``/schema`` (its page's script is served by the
service: it works offline), the web UI (:mod:`interlock.service.ui`) at ``/``.

The HTTP boundary, in the order a request meets it:

1. :class:`~.local_mode.LocalModeGuard`: in local mode, a foreign ``Host`` or a change
   from a foreign ``Origin`` is refused (403);
2. :class:`~.bodies.BodyPolicy`: bodies must be of a media type the route takes (415),
   JSON bodies UTF-8 and at most 64 levels deep (400), bodies at most
   ``max_body_size`` bytes (413);
3. the guards of :mod:`.auth` (401, 403), then the handler;
4. any error becomes an RFC 9457 problem document (:mod:`.errors`).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Final

from litestar import Controller, Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from interlock.sdk.errors import ConfigurationError
from interlock.service.api.auth import KEY_CACHE_STATE
from interlock.service.api.bodies import BodyPolicy
from interlock.service.api.deps import ServicesDep
from interlock.service.api.errors import EXCEPTION_HANDLERS, log_unexpected
from interlock.service.api.key_cache import DEFAULT_TTL, KeyCache
from interlock.service.api.local_mode import LocalModeGuard
from interlock.service.api.openapi import SECURITY, add_rule_components, openapi_components
from interlock.service.context import Services

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "OPTIONAL_CONTROLLERS",
    "api_controllers",
    "check_can_serve",
    "create_app",
    "default_controllers",
    "optional_controllers",
    "stop_streams",
]

DEFAULT_MAX_BODY_SIZE: Final = 1024 * 1024
"""Largest request body accepted (1 MiB); larger ones get 413, saying the limit."""

OPTIONAL_CONTROLLERS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("interlock.service.api.approvals", ("ApprovalController",)),
    (
        "interlock.service.api.deployments",
        ("DeploymentController", "RunController", "QueueController"),
    ),
    ("interlock.service.api.workers", ("WorkerController",)),
    ("interlock.service.api.adapters", ("AdapterController",)),
    ("interlock.service.api.backtests", ("BacktestController",)),
)
"""Controllers written by other parts of the service: (module, class names)."""


def api_controllers() -> list[type[Controller]]:
    """The API's own: health, events, rules, windows, firings, channels, connections, keys."""
    from interlock.service.api.channels import ChannelController  # noqa: PLC0415
    from interlock.service.api.connections import ConnectionController  # noqa: PLC0415
    from interlock.service.api.events_query import EventsController  # noqa: PLC0415
    from interlock.service.api.firings import FiringController  # noqa: PLC0415
    from interlock.service.api.health import HealthController  # noqa: PLC0415
    from interlock.service.api.keys import KeyController  # noqa: PLC0415
    from interlock.service.api.rules import RuleController  # noqa: PLC0415
    from interlock.service.api.windows import WindowController  # noqa: PLC0415

    return [
        HealthController,
        EventsController,
        RuleController,
        WindowController,
        FiringController,
        ChannelController,
        ConnectionController,
        KeyController,
    ]


def default_controllers() -> list[type[Controller]]:
    """:func:`api_controllers`, then every optional one whose module exists.

    Raises:
        ImportError: an optional module exists but fails to import (or lacks a class).
    """
    controllers = api_controllers()
    for module_name, class_names in OPTIONAL_CONTROLLERS:
        controllers.extend(optional_controllers(module_name, class_names))
    return controllers


def optional_controllers(module_name: str, class_names: Sequence[str]) -> list[type[Controller]]:
    """The controllers ``class_names`` of ``module_name``; none if the module does not exist.

    Raises:
        ImportError: the module exists but fails to import, or lacks one of the classes.
    """
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return []  # not written yet
        raise
    found: list[type[Controller]] = []
    for class_name in class_names:
        controller = getattr(module, class_name, None)
        if not (isinstance(controller, type) and issubclass(controller, Controller)):
            raise ImportError(f"{module_name} must define the Litestar controller {class_name}")
        found.append(controller)
    return found


def create_app(
    services: Services,
    *,
    controllers: Sequence[type[Controller]] | None = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    key_cache_ttl: float = DEFAULT_TTL,
    ui: bool = True,
    debug: bool = False,
) -> Litestar:
    """The HTTP API of one service, and its web UI.

    Args:
        services: The running service's resources; handlers receive it as ``services``.
        controllers: The controllers to serve (default: :func:`default_controllers`).
        max_body_size: Largest request body in bytes; larger ones are refused with 413.
        key_cache_ttl: Seconds an API-key check is reused (0: ask the store on every
            request); see :mod:`.key_cache`.
        ui: Serve the web UI at ``/`` (:mod:`interlock.service.ui`).
        debug: Litestar's debug mode (tracebacks in error answers: never in production).

    Before stopping the web server, call :func:`stop_streams` (open Server-Sent Events
    streams otherwise hold it until they end).
    """
    from interlock.service.api.event_log import EventLog  # noqa: PLC0415
    from interlock.service.api.events_query import EVENT_LOG_STATE  # noqa: PLC0415
    from interlock.service.ui import openapi_plugins, template_config  # noqa: PLC0415
    from interlock.service.ui.routes import ui_router, ui_state  # noqa: PLC0415

    handlers: list[Any] = list(controllers) if controllers is not None else default_controllers()
    if ui:
        handlers.append(ui_router())
    event_log = EventLog(services.publisher.config.nats)
    app = Litestar(
        route_handlers=handlers,
        dependencies={"services": Provide(lambda: services, sync_to_thread=False)},
        state=State(
            {
                "services": services,
                KEY_CACHE_STATE: KeyCache(services.store.api_keys, ttl=key_cache_ttl),
                EVENT_LOG_STATE: event_log,
                **ui_state(services),
            }
        ),
        middleware=[LocalModeGuard(), BodyPolicy()],
        exception_handlers=EXCEPTION_HANDLERS,
        after_exception=[log_unexpected],
        logging_config=None,  # the service configures logging, not the web framework
        request_max_body_size=max_body_size,
        template_config=template_config(),
        on_shutdown=[event_log.close],
        openapi_config=OpenAPIConfig(
            title="Interlock",
            version="0.1.0",
            description="Interlock's coordination plane: events, rules, firings, actions.",
            path="/schema",
            components=openapi_components(),
            security=SECURITY,
            render_plugins=openapi_plugins(),
        ),
        signature_namespace={"Services": Services, "ServicesDep": ServicesDep},
        debug=debug,
    )
    add_rule_components(app)
    return app


def stop_streams(app: Litestar) -> None:
    """End the UI's open Server-Sent Events streams (before the web server stops)."""
    from interlock.service.ui.stream import STREAMS_STATE  # noqa: PLC0415

    streams = app.state.get(STREAMS_STATE)
    if streams is not None:
        streams.stop()


async def check_can_serve(services: Services) -> None:
    """Refuse to serve a non-loopback address while no API key exists.

    Raises:
        ConfigurationError: ``api.host`` is reachable from other machines and the store
            holds no API key, so anyone could use the API.
    """
    api = services.settings.api
    if api.local:
        return
    if await services.store.api_keys.count() == 0:
        raise ConfigurationError(
            "api.host",
            f"{api.host} is reachable from other machines but no API key exists, so the "
            "API would be open to anyone; create an admin key first with: "
            "interlock keys create NAME --scope admin (or bind 127.0.0.1)",
        )
