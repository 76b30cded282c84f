"""Where a Prefect server is and how to authenticate to it, shown without secrets.

Two credentials exist: Prefect Cloud's API key (``Authorization: Bearer <key>``) and a
self-hosted server's ``PREFECT_SERVER_API_AUTH_STRING`` (``user:password`` sent as HTTP
Basic). The events websocket carries either one in its first ``auth`` message.
Nothing here ever puts a credential into a message: :attr:`PrefectConnection.origin`
(``scheme://host:port``) is what errors and logs name.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from urllib.parse import urlsplit

import msgspec

__all__ = ["ENV_API_KEY", "ENV_API_URL", "ENV_AUTH_STRING", "PrefectConnection"]

ENV_API_URL = "INTERLOCK_PREFECT_API_URL"
ENV_API_KEY = "INTERLOCK_PREFECT_API_KEY"
ENV_AUTH_STRING = "INTERLOCK_PREFECT_AUTH_STRING"


class PrefectConnection(msgspec.Struct, frozen=True, kw_only=True):
    """A Prefect API URL (``http://127.0.0.1:4200/api``) and optional credentials."""

    api_url: str
    api_key: str | None = None
    """Prefect Cloud's API key, sent as a bearer token."""
    auth_string: str | None = None
    """A self-hosted server's ``user:password`` auth string, sent as HTTP Basic."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.api_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "api_url must be the Prefect API's http(s) URL, e.g. http://127.0.0.1:4200/api"
            )

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        auth_string: str | None = None,
    ) -> PrefectConnection:
        """Explicit values first, then ``INTERLOCK_PREFECT_*`` variables from ``environ``.

        Raises:
            ValueError: no API URL is given anywhere, or it is not an http(s) URL.
        """
        url = api_url or environ.get(ENV_API_URL)
        if not url:
            raise ValueError(f"no Prefect API URL: set `api_url` or {ENV_API_URL}")
        return cls(
            api_url=url.rstrip("/"),
            api_key=api_key or environ.get(ENV_API_KEY) or None,
            auth_string=auth_string or environ.get(ENV_AUTH_STRING) or None,
        )

    @property
    def origin(self) -> str:
        """``scheme://host[:port]``: the URL without credentials, path or query."""
        parts = urlsplit(self.api_url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}"

    @property
    def base_url(self) -> str:
        """The API URL without user information (credentials go in headers)."""
        parts = urlsplit(self.api_url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path}".rstrip("/")

    @property
    def events_url(self) -> str:
        """The outgoing events websocket: ``ws(s)://host:port/api/events/out``."""
        scheme, rest = self.base_url.split("://", 1)
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/events/out"

    @property
    def token(self) -> str | None:
        """What the websocket's ``auth`` message carries (the key, else the auth string)."""
        return self.api_key or self.auth_string

    def headers(self) -> dict[str, str]:
        """HTTP headers that authenticate a REST call."""
        if self.api_key:
            return {"Authorization": f"Bearer {self.api_key}"}
        if self.auth_string:
            encoded = base64.b64encode(self.auth_string.encode()).decode()
            return {"Authorization": f"Basic {encoded}"}
        return {}

    def __repr__(self) -> str:
        secret = " (with credentials)" if self.token else ""
        return f"PrefectConnection({self.origin}{secret})"
