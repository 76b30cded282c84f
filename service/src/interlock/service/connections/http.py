"""An ``http`` connection's request parts: its base URL joined with a path, its headers.

Used by the ``webhook`` executor (``webhook(connection="tickets", path="/issues")``) and
by ``connections test``. The path is always put *under* the base URL: it starts with
``/`` (one is added), so a path from a template can change where on the host a request
goes, never the host (``https://h`` + ``@evil`` would be the host ``evil``).
"""

from __future__ import annotations

from interlock.sdk.connections import ResolvedConnection

__all__ = ["headers_of", "join"]


def headers_of(connection: ResolvedConnection) -> dict[str, str]:
    """The connection's headers (its ``token`` as ``Authorization: Bearer``)."""
    headers = {str(k): str(v) for k, v in (connection.secrets.get("headers") or {}).items()}
    token = connection.secrets.get("token")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def join(base_url: str, path: str) -> str:
    """``base_url`` with ``path`` under it (see the module's docstring)."""
    if not path:
        return base_url
    return f"{base_url.rstrip('/')}/{path.lstrip('/')}"
