"""A small client of Airflow's REST API: authentication, errors, pagination.

Both the REST bridge and the action executors talk to Airflow through
:class:`AirflowClient`. ``api_version = "v2"`` is Airflow 3's ``/api/v2`` with a JWT
(given as ``token``, or fetched from ``POST /auth/token`` with ``username`` and
``password``, and fetched again once when a request answers 401); ``"v1"`` is Airflow 2's
``/api/v1`` with HTTP basic authentication (or a bearer ``token``).

Errors::

    AirflowError
    ├── AirflowUnavailable (ConnectionError)   unreachable, timed out, 5xx, 429
    └── AirflowRefused (PermissionError)       401/403 (credentials), 404, other 4xx

Messages name the method, the URL (without credentials) and Airflow's ``detail``; they
never hold the password or the token.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import msgspec

__all__ = [
    "AirflowClient",
    "AirflowError",
    "AirflowRefused",
    "AirflowUnavailable",
    "Connection",
    "path_segment",
]

ApiVersion = Literal["v1", "v2"]


class AirflowError(Exception):
    """A request to Airflow failed.

    Attributes:
        status: The HTTP status, or ``None`` when there was no response.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AirflowUnavailable(AirflowError, ConnectionError):
    """Airflow is unreachable or failing (5xx, 429, timeout): worth retrying later."""


class AirflowRefused(AirflowError, PermissionError):
    """Airflow refused the request (401/403, 404, another 4xx): retrying will not help."""


class Connection(msgspec.Struct, frozen=True, kw_only=True):
    """Where Airflow is and how to authenticate. ``repr`` hides the secrets."""

    url: str
    """The base URL, e.g. ``http://airflow:8080`` (the API is under ``/api/<version>``)."""
    api_version: ApiVersion = "v2"
    username: str | None = None
    password: str | None = None
    token: str | None = None
    timeout: float = 10.0

    def __repr__(self) -> str:
        secret = "token" if self.token else ("password" if self.password else "none")
        return (
            f"Connection(url={_public_url(self.url)!r}, api_version={self.api_version!r}, "
            f"username={self.username!r}, auth={secret})"
        )


def _public_url(url: str) -> str:
    """``url`` without user information (``https://user:pw@host`` → ``https://host``)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def path_segment(value: str) -> str:
    """``value`` quoted for a URL path (run ids hold ``:`` and ``+``)."""
    return quote(value, safe="")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        if not text or "html" in response.headers.get("content-type", ""):
            return response.reason_phrase  # a web page (Airflow 2's webserver) says no more
        return text[:200]
    if isinstance(body, dict):
        detail = body.get("detail", body.get("title", body))
        if isinstance(detail, list):  # FastAPI validation errors
            detail = "; ".join(
                f"{'.'.join(str(p) for p in item.get('loc', ()))}: {item.get('msg')}"
                if isinstance(item, dict)
                else str(item)
                for item in detail
            )
        return str(detail)[:300]
    return str(body)[:300]


class AirflowClient:
    """Blocking calls to one Airflow's REST API; thread-safe."""

    def __init__(self, connection: Connection, *, transport: httpx.BaseTransport | None = None):
        self.connection = connection
        self.base = _public_url(connection.url).rstrip("/")
        auth: httpx.Auth | None = None
        if connection.api_version == "v1" and connection.username and not connection.token:
            auth = httpx.BasicAuth(connection.username, connection.password or "")
        self._http = httpx.Client(
            base_url=connection.url.rstrip("/"),
            timeout=connection.timeout,
            auth=auth,
            transport=transport,
            headers={"Accept": "application/json"},
        )
        self._token = connection.token
        self._lock = threading.Lock()

    @property
    def api(self) -> str:
        """The API's path prefix: ``/api/v2`` or ``/api/v1``."""
        return f"/api/{self.connection.api_version}"

    # -- authentication ----------------------------------------------------------------

    def _jwt(self, refresh: bool = False) -> str | None:
        """The bearer token: the given one, or one fetched with username and password."""
        connection = self.connection
        if connection.token or connection.api_version == "v1" or not connection.username:
            return self._token
        with self._lock:
            if self._token is None or refresh:
                response = self._send(
                    "POST",
                    "/auth/token",
                    json={"username": connection.username, "password": connection.password or ""},
                    bearer=None,
                )
                if response.status_code not in (200, 201):
                    raise self._error("POST", "/auth/token", response)
                token = response.json().get("access_token")
                if not isinstance(token, str):
                    raise AirflowRefused(
                        f"POST {self.base}/auth/token answered without an access_token"
                    )
                self._token = token
            return self._token

    # -- requests ----------------------------------------------------------------------

    def _send(self, method: str, path: str, *, bearer: str | None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        try:
            return self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException as exc:
            raise AirflowUnavailable(
                f"{method} {self.base}{path}: no answer within {self.connection.timeout:g} s"
            ) from exc
        except httpx.TransportError as exc:
            raise AirflowUnavailable(
                f"{method} {self.base}{path}: cannot connect ({type(exc).__name__}: {exc})"
            ) from exc

    def _error(self, method: str, path: str, response: httpx.Response) -> AirflowError:
        status = response.status_code
        where = f"{method} {self.base}{path}: HTTP {status}"
        detail = _detail(response)
        if status in (401, 403):
            how = (
                "check the token"
                if self.connection.token
                else "check the username and password"
                if self.connection.username
                else "give a token or a username and password"
            )
            return AirflowRefused(f"{where} ({detail}); {how}", status)
        if status == 429 or status >= 500:
            return AirflowUnavailable(f"{where} ({detail})", status)
        if status == 404 and (path.startswith("/api/") or path == "/auth/token"):
            # No /api/v2, or no /auth/token (Airflow 2's webserver has neither).
            detail += (
                f"; is {self.base} an Airflow with the {self.connection.api_version} API "
                "(v2: Airflow 3, v1: Airflow 2)?"
            )
        return AirflowRefused(f"{where} ({detail})", status)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        accept: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """Send ``method path`` (under the base URL) with authentication.

        Returns the response when its status is in ``accept``.

        Raises:
            AirflowUnavailable: unreachable, timed out, 5xx or 429.
            AirflowRefused: any other status.
        """
        kwargs: dict[str, Any] = {"params": params}
        if json is not None:
            kwargs["json"] = json
        response = self._send(method, path, bearer=self._jwt(), **kwargs)
        if response.status_code == 401 and self._token and not self.connection.token:
            response = self._send(method, path, bearer=self._jwt(refresh=True), **kwargs)
        if response.status_code not in accept:
            raise self._error(method, path, response)
        return response

    def pages(
        self, path: str, key: str, params: Mapping[str, Any], *, page_size: int, offset: int = 0
    ) -> Iterator[tuple[int, list[dict[str, Any]], httpx.Response]]:
        """Yield ``(offset of the page, items, response)`` page by page until a short page."""
        while True:
            response = self.request(
                "GET", path, params={**params, "limit": page_size, "offset": offset}
            )
            body = response.json()
            items = body.get(key) if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise AirflowRefused(
                    f"GET {self.base}{path}: the answer has no list {key!r}; "
                    "is this the Airflow REST API?"
                )
            yield offset, items, response
            if len(items) < page_size:
                return
            offset += len(items)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()
