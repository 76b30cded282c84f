"""How errors become HTTP answers: ``{"status_code": ..., "detail": ...}`` bodies.

=====================================  ======
error                                  status
=====================================  ======
``NotFound``                           404
``AlreadyExists``                      409
``InvalidRecord``                      400
``InvalidTransition``                  409
``StoreUnavailable``                   503
other ``StoreError``                   500 (logged; the detail is not sent)
``EventValidationError``               400
``BusError`` (NATS unreachable)        503
``RuleDefinitionError``                422 (with ``problems``: every issue)
=====================================  ======

The store's messages never hold a secret (see :mod:`interlock.service.store.errors`),
so they are sent as they are.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap, Scope

from interlock.rules.errors import RuleDefinitionError
from interlock.sdk.errors import BusError, EventValidationError, InterlockError
from interlock.service.store import (
    AlreadyExists,
    InvalidRecord,
    InvalidTransition,
    NotFound,
    StoreError,
    StoreUnavailable,
)

__all__ = ["EXCEPTION_HANDLERS", "invalid_rules", "log_unexpected", "problem"]

logger = logging.getLogger(__name__)


def problem(status_code: int, detail: str, **extra: Any) -> Response[dict[str, Any]]:
    """A JSON error answer in the same shape as Litestar's own."""
    return Response(
        {"status_code": status_code, "detail": detail, **extra},
        status_code=status_code,
        media_type=MediaType.JSON,
    )


def _status(exc: Exception) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, AlreadyExists | InvalidTransition):
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
        return problem(500, "internal error in the Interlock service (see its log)")
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
}
"""The application's handlers for Interlock's errors."""
