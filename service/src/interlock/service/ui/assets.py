"""The UI's static files: read once, served from memory, named with their digest.

:func:`static_url` gives ``/static/<path>?v=<sha256[:12]>``. A request whose ``v`` is the
file's digest may be cached for a year (``immutable``): a changed file has a new digest,
so a new URL. Without it (or with a stale one) the answer must be revalidated (``ETag``).
The vendored files (``static/vendor/``, see its README) are checked against
``SHA256SUMS`` by a unit test.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

__all__ = [
    "API_DOCS",
    "HTMX",
    "HTMX_SSE",
    "STATIC_DIR",
    "StaticFile",
    "serve_static",
    "static_file",
    "static_files",
    "static_url",
]

STATIC_DIR: Final = Path(__file__).parent / "static"
HTMX: Final = "vendor/htmx-2.0.11.min.js"
HTMX_SSE: Final = "vendor/htmx-ext-sse-2.2.4.min.js"
API_DOCS: Final = "vendor/rapidoc-9.3.8.min.js"
_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"
_SERVED = frozenset({".js", ".css", ".svg", ".png", ".ico", ".txt", ".woff2"})


@dataclass(frozen=True, slots=True)
class StaticFile:
    """One file under ``static/``."""

    content: bytes
    digest: str
    """The first 12 hex digits of its SHA-256."""
    media_type: str


@cache
def static_files() -> dict[str, StaticFile]:
    """Every servable file under ``static/``, by its path relative to it (read once)."""
    found: dict[str, StaticFile] = {}
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file() and path.suffix in _SERVED:
            content = path.read_bytes()
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if media_type in ("text/javascript", "application/javascript", "text/css"):
                media_type += "; charset=utf-8"
            found[path.relative_to(STATIC_DIR).as_posix()] = StaticFile(
                content=content,
                digest=hashlib.sha256(content).hexdigest()[:12],
                media_type=media_type,
            )
    return found


def static_file(path: str) -> StaticFile:
    """The file at ``path`` (relative to ``static/``).

    Raises:
        KeyError: there is none.
    """
    return static_files()[path]


def static_url(path: str) -> str:
    """``/static/<path>?v=<digest>``: a URL that changes when the file does."""
    return f"/static/{path}?v={static_file(path).digest}"


@get(
    "/static/{path:path}",
    include_in_schema=False,
    name="ui-static",
    sync_to_thread=False,
)
def serve_static(request: Request[Any, Any, Any], path: FromPath[str]) -> Response[bytes]:
    """A static file; cached for a year when asked for with its digest."""
    try:
        found = static_file(path.lstrip("/"))
    except KeyError:
        raise NotFoundException(detail=f"no static file {path!r}") from None
    etag = f'"{found.digest}"'
    headers = {
        "ETag": etag,
        "Cache-Control": _IMMUTABLE
        if request.query_params.get("v") == found.digest
        else _REVALIDATE,
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(b"", status_code=304, headers=headers)
    return Response(found.content, media_type=found.media_type, headers=headers)
