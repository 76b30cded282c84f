"""How errors become HTTP answers: RFC 9457 problem documents, and never a 500 on purpose.

Every error answer of the API (its own and Litestar's: validation, unknown route, wrong
method, body too large, missing key) is ``application/problem+json``::

    {"type": "about:blank", "title": "Not Found", "status": 404,
     "detail": "no rule 'nightly-sales'", "status_code": 404}

``type`` is ``about:blank`` (the status says which kind of problem it is), ``title`` the
status's phrase, ``detail`` what is wrong and how to fix it. ``status_code`` repeats
``status`` for clients written before problem documents. Extension members carry the
particulars: ``problems`` (rules: one per issue, with rule, path, message, hint),
``extra`` (Litestar's validation errors: one per field), ``index``/``field`` (events),
``refused`` (events JetStream refused).

=====================================  ======
error                                  status
=====================================  ======
``NotFound``                           404
``AlreadyExists``                      409
``InvalidRecord``                      400
``InvalidTransition``                  409
``InUse``                              409
``AmbiguousId`` (an id prefix)         400 (the message lists the ids it starts)
``StoreUnavailable``                   503
other ``StoreError``                   500 (logged; the detail is not sent)
``EventValidationError``               400
``BusError`` (NATS unreachable)        503
``RuleDefinitionError``                422 (with ``problems``: every issue)
Litestar's ``HTTPException``           its status (413 says the limit and what to do)
anything else                          500 (a bug: logged with its traceback)
=====================================  ======

The store's messages never hold a secret (see :mod:`interlock.service.store.errors`),
so they are sent as they are.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, Final

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap, Scope

from interlock.rules.errors import RuleDefinitionError
from interlock.sdk.errors import BusError, EventValidationError, InterlockError
from interlock.service.store import (
    AlreadyExists,
    InUse,
    InvalidRecord,
    InvalidTransition,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from interlock.service.store.ids import AmbiguousId
from interlock.service.store.names import NAME_HELP, NAME_PATTERN

__all__ = [
    "EXCEPTION_HANDLERS",
    "PROBLEM_JSON",
    "TOO_LARGE_HINT_OPT",
    "invalid_rules",
    "log_unexpected",
    "problem",
]

logger = logging.getLogger(__name__)

PROBLEM_JSON: Final = "application/problem+json"
"""The media type of every error answer (RFC 9457)."""
TOO_LARGE_HINT_OPT: Final = "interlock_too_large_hint"
"""A route handler's ``opt`` key: what a 413 tells the client to do instead."""

_INTERNAL = "internal error in the Interlock service (see its log)"
_TOO_LARGE_HINT = "send the content in several smaller requests"


def problem(
    status_code: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response[dict[str, Any]]:
    """An ``application/problem+json`` answer; ``extensions`` become extension members."""
    return Response(
        {
            "type": "about:blank",
            "title": _title(status_code),
            "status": status_code,
            "detail": detail,
            "status_code": status_code,
            **extensions,
        },
        status_code=status_code,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _title(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def _status(exc: Exception) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, AmbiguousId):
        return 400
    if isinstance(exc, AlreadyExists | InvalidTransition | InUse):
        return 409
    if isinstance(exc, InvalidRecord | EventValidationError):
        return 400
    if isinstance(exc, StoreUnavailable | BusError):
        return 503
    return 500


def _handle(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    status = _status(exc)
    if status == 500:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return problem(500, _INTERNAL)
    if status == 503:
        logger.warning("%s %s: %s", request.method, request.url.path, exc)
    return problem(status, str(exc))


def _invalid_rules(
    request: Request[Any, Any, Any], exc: RuleDefinitionError
) -> Response[dict[str, Any]]:
    return invalid_rules(exc)


def invalid_rules(exc: RuleDefinitionError) -> Response[dict[str, Any]]:
    """422 listing every problem of the rules (``problems``: rule, path, message, hint)."""
    problems = [msgspec.to_builtins(issue) for issue in exc.issues]
    detail = str(exc.issues[0]) if len(problems) == 1 else f"{len(problems)} problems in the rules"
    return problem(422, detail, problems=problems)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    """Litestar's own errors (and ours raised as ``HTTPException``) as problem documents."""
    status = exc.status_code
    extensions: dict[str, Any] = {}
    detail = exc.detail or _title(status)
    if status == 413:
        detail = _too_large(request)
    elif status == 500:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        detail = _INTERNAL
    if exc.extra:
        extensions["extra"] = (
            _readable(exc.extra) if isinstance(exc, ValidationException) else exc.extra
        )
    return problem(status, detail, headers=exc.headers, **extensions)


def _too_large(request: Request[Any, Any, Any]) -> str:
    try:
        handler = request.route_handler
    except (KeyError, AttributeError):  # refused before routing
        return f"the request body is too large: {_TOO_LARGE_HINT}"
    limit = handler.resolve_request_max_body_size()
    hint = handler.opt.get(TOO_LARGE_HINT_OPT, _TOO_LARGE_HINT)
    return f"the request body is larger than the limit of {limit:,} bytes: {hint}"


def _readable(extra: Any) -> Any:
    """Validation messages with the rule of names said in words, not as its regex."""
    if not isinstance(extra, list):
        return extra
    regex = f"`str` matching regex '{NAME_PATTERN}'"
    return [
        {**item, "message": item["message"].replace(regex, f"a name ({NAME_HELP})")}
        if isinstance(item, dict) and isinstance(item.get("message"), str)
        else item
        for item in extra
    ]


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """A bug (logged by :func:`log_unexpected`): 500 without its details."""
    return problem(500, _INTERNAL)


async def log_unexpected(exc: BaseException, scope: Scope) -> None:
    """Log an error no handler expected (a bug), with its traceback; the client gets 500.

    Litestar's own exception logging is left off together with its logging configuration
    (which would take over the process's root logger).
    """
    if isinstance(exc, HTTPException | InterlockError):
        return  # an answer on purpose (4xx/5xx with a detail), or logged by _handle
    logger.error(
        "unexpected error in %s %s", scope.get("method", "?"), scope.get("path", "?"), exc_info=exc
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    RuleDefinitionError: _invalid_rules,
    StoreError: _handle,
    EventValidationError: _handle,
    BusError: _handle,
    HTTPException: _http_error,
    Exception: _unexpected,
}
"""The application's handlers: every error becomes a problem document."""
