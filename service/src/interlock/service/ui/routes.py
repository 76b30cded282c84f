"""The web UI's router: its pages, streams, static files and HTML error pages.

:func:`ui_router` is mounted by :func:`interlock.service.api.app.create_app`, with
:func:`ui_state` in the application's state. Errors under it are HTML pages
(``ui/error.html``), never problem documents; a page asked for by nobody redirects to
``/login`` (see :mod:`.security`).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from litestar import Request, Response, Router
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template

from interlock.rules.errors import RuleDefinitionError
from interlock.sdk.errors import BusError, EventValidationError
from interlock.service.api.bodies import BODY_MEDIA_TYPES_OPT
from interlock.service.context import Services
from interlock.service.store import (
    AlreadyExists,
    ApprovalClosed,
    InvalidRecord,
    InvalidTransition,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from interlock.service.ui.assets import serve_static
from interlock.service.ui.catalog import CATALOG_STATE, RuleCatalog
from interlock.service.ui.render import SECURITY_HEADERS
from interlock.service.ui.security import SIGNER_STATE, Signer, SignInRequired
from interlock.service.ui.stream import STREAMS_STATE, Streams

__all__ = ["ErrorPage", "ui_router", "ui_state"]

logger = logging.getLogger(__name__)

FORM_MEDIA_TYPES = (RequestEncodingType.URL_ENCODED.value, RequestEncodingType.MULTI_PART.value)
"""What the UI's routes take as bodies: the forms of its pages."""
_TITLES = {
    400: "That request cannot be answered",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "Already done",
    413: "Too large",
    422: "Not valid",
    503: "Unavailable",
}


@dataclass(frozen=True, slots=True)
class ErrorPage:
    """An error, as a page."""

    title: str
    detail: str


def ui_state(services: Services) -> dict[str, Any]:
    """What the UI keeps in the application's state: signer, streams, rule catalog."""
    secret: bytes
    try:
        secret = services.settings.ensure_secret_key().get_secret_value().encode()
    except Exception:  # noqa: BLE001 - no key: sessions last as long as the process
        logger.warning("no secret key: UI sessions end when the service restarts")
        secret = secrets.token_bytes(32)
    return {
        SIGNER_STATE: Signer(secret),
        STREAMS_STATE: Streams(),
        CATALOG_STATE: RuleCatalog(services),
    }


def _error_page(status: int, detail: str) -> Template:
    return Template(
        "ui/error.html",
        context={
            "page": ErrorPage(title=_TITLES.get(status, "Something went wrong"), detail=detail)
        },
        status_code=status,
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
    )


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, SignInRequired):
        site = (request.headers.get("sec-fetch-site") or "").lower()
        if site == "cross-site":  # a Strict cookie was not sent: reload from here once
            return Template("ui/reload.html", headers=SECURITY_HEADERS, status_code=200)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("hx-request") == "true":
            return Response(b"", status_code=401, headers={"HX-Redirect": "/login"})
        return Redirect(f"/login?next={quote(target, safe='')}", status_code=303)
    detail = exc.detail or _TITLES.get(exc.status_code, "")
    if exc.status_code >= 500:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        detail = "internal error in the Interlock service (see its log)"
    return _error_page(exc.status_code, detail)


def _status(exc: Exception) -> int:
    """The status of an error of the service's own (as the API's problem documents say)."""
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, AlreadyExists | InvalidTransition | ApprovalClosed):
        return 409
    if isinstance(exc, InvalidRecord | EventValidationError):
        return 400
    if isinstance(exc, RuleDefinitionError):
        return 422
    if isinstance(exc, StoreUnavailable | BusError):
        return 503
    return 500


def _domain_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    status = _status(exc)
    if status >= 500:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error_page(status, "internal error in the Interlock service (see its log)")
    return _error_page(status, str(exc))


def ui_router() -> Router:
    """Every page of the UI (``include_in_schema`` off: the API's schema stays the API's)."""
    from interlock.service.ui.pages.admin import AdminController  # noqa: PLC0415
    from interlock.service.ui.pages.approvals import ApprovalsController  # noqa: PLC0415
    from interlock.service.ui.pages.events import EventsController  # noqa: PLC0415
    from interlock.service.ui.pages.firings import FiringsController  # noqa: PLC0415
    from interlock.service.ui.pages.login import LoginController  # noqa: PLC0415
    from interlock.service.ui.pages.overview import OverviewController  # noqa: PLC0415
    from interlock.service.ui.pages.rules import RulesController  # noqa: PLC0415
    from interlock.service.ui.pages.runs import RunsController  # noqa: PLC0415
    from interlock.service.ui.pages.sla import SlaController  # noqa: PLC0415

    return Router(
        path="/",
        route_handlers=[
            serve_static,
            LoginController,
            OverviewController,
            EventsController,
            RulesController,
            SlaController,
            FiringsController,
            RunsController,
            ApprovalsController,
            AdminController,
        ],
        # The application's handlers answer problem documents for these: the UI's own
        # must name them too (a handler is chosen by the error's class, nearest first).
        exception_handlers={
            HTTPException: _http_error,
            StoreError: _domain_error,
            RuleDefinitionError: _domain_error,
            EventValidationError: _domain_error,
            BusError: _domain_error,
            Exception: _domain_error,
        },
        include_in_schema=False,
        # The pages' forms post form bodies (see interlock.service.api.bodies): every
        # action carries at least its CSRF token.
        opt={BODY_MEDIA_TYPES_OPT: FORM_MEDIA_TYPES},
    )
