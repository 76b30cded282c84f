r"""What a request may carry: JSON bodies only, UTF-8, nested at most 64 levels, no NUL.

:class:`BodyPolicy` is an ASGI middleware of the application: it looks at a request
before any guard or handler reads it, and refuses

- a body whose ``Content-Type`` the route does not take: 415. Routes take
  ``application/json``, unless they say otherwise: ``opt={BODY_MEDIA_TYPES_OPT: (...)}``
  (``POST /api/events`` adds the CloudEvents types), or a ``data`` parameter declared as
  a form (the approval links' HTML form). A body with no ``Content-Type`` is refused
  too: a browser page can send one cross-site without asking first;
- a JSON body that is not UTF-8 (RFC 8259), nests objects and arrays deeper than
  :data:`MAX_JSON_DEPTH`, or holds ``\u0000`` (PostgreSQL cannot store it): 400;
- a URL holding a NUL character (``%00``): 400.

A request without a body (``Content-Length: 0`` or none, not chunked) passes whatever
its ``Content-Type``. Routes that decode JSON with limits of their own (``POST
/api/events``: the wire contract's, enforced by the SDK's decoder) set
``opt={CHECKS_JSON_ITSELF_OPT: True}``: only their media type is checked here.

The depth is found without decoding (a decoder would recurse before it could refuse):
strings are cut out, and the running count of opening minus closing brackets left is
taken at every bracket (C loops: tens of milliseconds for a 1 MiB body); its highest
value is the depth. Documents with fewer opening brackets than the limit skip all that.
Brackets that do not match are left to the decoder, which refuses them.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any, Final

from litestar import Request
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import ClientException, HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.params import BodyKwarg
from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "BODY_MEDIA_TYPES_OPT",
    "CHECKS_JSON_ITSELF_OPT",
    "JSON",
    "MAX_JSON_DEPTH",
    "BodyPolicy",
    "UnsupportedMediaType",
    "check_json",
    "json_depth_exceeds",
]

JSON: Final = "application/json"
MAX_JSON_DEPTH: Final = 64
"""Deepest nesting of objects and arrays in a JSON body (``{"a": [1]}`` is 2 deep)."""
BODY_MEDIA_TYPES_OPT: Final = "interlock_body_media_types"
"""A route handler's ``opt`` key: the media types its body may have (default: JSON)."""
CHECKS_JSON_ITSELF_OPT: Final = "interlock_checks_json_itself"
"""A route handler's ``opt`` key: it decodes and limits its JSON body itself."""

_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORMS = frozenset({RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART})
_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_STEP = [1 if byte in b"[{" else -1 for byte in range(256)]  # only brackets are looked up
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class UnsupportedMediaType(HTTPException):
    """415: the body's media type is not one the route takes."""

    status_code = 415


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON document ``body`` nests objects and arrays deeper than ``limit``."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _STRINGS.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


def check_json(body: bytes) -> None:
    r"""Refuse a JSON body that is not UTF-8, is nested too deeply or holds ``\u0000``.

    Raises:
        ClientException: one of those, saying which and what to send instead.
    """
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        raise ClientException(
            detail=f"the body is not valid UTF-8 (byte {exc.start}): JSON must be encoded as UTF-8"
        ) from None
    if json_depth_exceeds(body):
        raise ClientException(
            detail=f"the JSON body nests objects and arrays deeper than {MAX_JSON_DEPTH} "
            "levels (or its brackets do not match): send a flatter document"
        )
    if b"\\u0000" in body and _NUL_ESCAPE.search(body):
        raise ClientException(
            detail="the JSON body holds a NUL character (\\u0000) in a string, which cannot "
            "be stored: remove it"
        )


def _media_types(handler: BaseRouteHandler) -> tuple[str, ...]:
    declared = handler.opt.get(BODY_MEDIA_TYPES_OPT)
    if declared is not None:
        return tuple(declared)
    data = handler.parsed_fn_signature.parameters.get("data")
    kwarg = data.kwarg_definition if data is not None else None
    if isinstance(kwarg, BodyKwarg) and kwarg.media_type in _FORMS:
        return (RequestEncodingType(kwarg.media_type).value,)
    return (JSON,)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _has_body(scope: Scope) -> bool:
    if _header(scope, b"transfer-encoding") is not None:
        return True
    length = _header(scope, b"content-length")
    return length is not None and length.strip() not in ("", "0")


def _check_url(scope: Scope) -> None:
    if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
        raise ClientException(detail="the URL holds a NUL character (%00): remove it")


class BodyPolicy(ASGIMiddleware):
    """Refuses bodies of the wrong media type (415), malformed JSON bodies and NUL in URLs."""

    scopes = (ScopeType.HTTP,)

    def __init__(self) -> None:
        self._accepted: dict[int, tuple[str, ...]] = {}

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Check the request; pass it on if it is acceptable."""
        _check_url(scope)
        if scope.get("method") in _WITH_BODY and _has_body(scope):
            handler: BaseRouteHandler = scope["route_handler"]
            media = self._check_media_type(scope, handler)
            is_json = media == JSON or media.endswith("+json")
            if is_json and not handler.opt.get(CHECKS_JSON_ITSELF_OPT, False):
                request: Request[Any, Any, Any] = Request(scope, receive)
                check_json(await request.body())  # kept in the scope for the handler
        await next_app(scope, receive, send)

    def _check_media_type(self, scope: Scope, handler: BaseRouteHandler) -> str:
        accepted = self._accepted.get(id(handler))
        if accepted is None:
            accepted = self._accepted[id(handler)] = _media_types(handler)
        given = _header(scope, b"content-type")
        media, _, parameters = (given or "").partition(";")
        media = media.strip().lower()
        if media not in accepted:
            what = f"Content-Type {given!r}" if given else "no Content-Type"
            raise UnsupportedMediaType(
                detail=f"this endpoint takes {' or '.join(accepted)} bodies, not {what}: "
                f"send the body as {accepted[0]} with that Content-Type header",
                headers={"Accept-Post": ", ".join(accepted)},
            )
        charset = _charset(parameters)
        if media.endswith("json") and charset not in (None, "utf-8", "utf8"):
            raise UnsupportedMediaType(
                detail=f"JSON bodies ({media}) are UTF-8, not {charset}: send charset=utf-8 "
                "or none",
                headers={"Accept-Post": ", ".join(accepted)},
            )
        return media


def _charset(parameters: str) -> str | None:
    for parameter in parameters.split(";"):
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None
