"""``interlock connections test NAME``: does the system answer; are the credentials accepted.

Each kind is checked in two steps, and the result says which failed, in one line that
never holds a secret (URLs are shown by origin, ``scheme://host:port``):

============  ===========================================  ==================================
kind          answers                                      credentials
============  ===========================================  ==================================
``airflow``   ``GET /api/v2/monitor/health`` (v1:          v2: ``POST /auth/token`` with the
              ``/api/v1/health``)                          user, or the token; then
                                                           ``GET /api/<v>/dags?limit=1``
``prefect``   ``GET /health``                              ``POST /flows/filter`` (limit 1)
``http``      ``GET`` of the base URL with its headers     not 401 or 403
``s3``        ``ListBuckets`` (boto3, with the adapters'   not ``InvalidAccessKeyId``,
              ``[s3]`` extra)                              ``SignatureDoesNotMatch``,
                                                           ``AccessDenied``
``database``  connects and runs ``SELECT 1``               not an authentication failure
``apprise``   sends a notification "Interlock connection   (Apprise says sent or not)
              test" (the only way to know it arrives)
============  ===========================================  ==================================
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import msgspec

from interlock.sdk.connections import ResolvedConnection
from interlock.sdk.errors import ActionFailed
from interlock.service.actions import apprise_send
from interlock.service.actions.redact import redact_text, url_origin

__all__ = ["CheckResult", "check"]

Outcome = Literal["ok", "unreachable", "refused", "failed"]


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    """How ``connections test`` went: ``ok``, or which step failed and why."""

    name: str
    kind: str
    ok: bool
    outcome: Outcome
    """``ok``; ``unreachable``: the system did not answer; ``refused``: it answered but
    refused the credentials; ``failed``: something else (named in ``detail``)."""
    detail: str
    """One line, without a secret."""


class _Failed(Exception):
    def __init__(self, outcome: Outcome, detail: str) -> None:
        super().__init__(detail)
        self.outcome: Outcome = outcome
        self.detail = detail


async def check(connection: ResolvedConnection, *, timeout: float = 10.0) -> CheckResult:
    """Check that ``connection``'s system answers and accepts its credentials."""
    checker = _CHECKS[connection.kind]
    try:
        async with asyncio.timeout(timeout * 2):
            detail = await checker(connection, timeout)
    except _Failed as failed:
        return _result(connection, failed.outcome, failed.detail)
    except TimeoutError:
        return _result(connection, "unreachable", f"no answer within {timeout * 2:g} s")
    return _result(connection, "ok", detail)


def _result(connection: ResolvedConnection, outcome: Outcome, detail: str) -> CheckResult:
    line = " ".join(_hide(connection, detail).split())
    return CheckResult(
        name=connection.name, kind=connection.kind, ok=outcome == "ok", outcome=outcome, detail=line
    )


def _hide(connection: ResolvedConnection, text: str) -> str:
    """``text`` without any secret of ``connection`` (belt and braces: no step puts one in)."""
    secrets = connection.secrets
    if connection.kind == "apprise":  # every fragment of an Apprise URL may be a token
        return redact_text(text, str(secrets["url"]))
    values: list[str] = []
    for field, value in secrets.items():
        if isinstance(value, dict):
            values.extend(str(v) for v in value.values())
        elif connection.kind == "database" and field == "url":
            values.append(str(value))
            password = urlsplit(str(value)).password
            if password:
                values.append(password)
        else:
            values.append(str(value))
    for value in sorted(values, key=len, reverse=True):
        if value:
            text = text.replace(value, "***")
    return text


async def _get(
    client: httpx.AsyncClient, method: str, url: str, what: str, **kwargs: Any
) -> httpx.Response:
    try:
        return await client.request(method, url, **kwargs)
    except httpx.TimeoutException:
        raise _Failed(
            "unreachable", f"{what} at {url_origin(url)} did not answer in time"
        ) from None
    except httpx.TransportError as exc:
        raise _Failed(
            "unreachable", f"{what} at {url_origin(url)} does not answer ({type(exc).__name__})"
        ) from None


def _refused(what: str, url: str, response: httpx.Response) -> _Failed:
    return _Failed(
        "refused",
        f"{what} at {url_origin(url)} answered but refused the credentials "
        f"(HTTP {response.status_code})",
    )


def _unexpected(what: str, url: str, response: httpx.Response) -> _Failed:
    return _Failed("failed", f"{what} at {url_origin(url)} answered HTTP {response.status_code}")


async def _airflow(connection: ResolvedConnection, timeout: float) -> str:
    url = str(connection.settings["url"]).rstrip("/")
    version = str(connection.settings.get("api_version", "v2"))
    secrets = connection.secrets
    async with httpx.AsyncClient(timeout=timeout) as client:
        health = "/api/v2/monitor/health" if version == "v2" else "/api/v1/health"
        answer = await _get(client, "GET", f"{url}{health}", "Airflow")
        if answer.status_code >= 500 or answer.status_code == 404:
            raise _unexpected("Airflow", url, answer)
        headers: dict[str, str] = {}
        auth: httpx.BasicAuth | None = None
        if "token" in secrets:
            headers["Authorization"] = f"Bearer {secrets['token']}"
        elif version == "v2":
            answer = await _get(
                client,
                "POST",
                f"{url}/auth/token",
                "Airflow",
                json={
                    "username": connection.settings.get("username"),
                    "password": secrets.get("password"),
                },
            )
            if answer.status_code in (400, 401, 403, 422):
                raise _refused("Airflow", url, answer)
            if answer.status_code >= 300:
                raise _unexpected("Airflow", url, answer)
            headers["Authorization"] = f"Bearer {answer.json().get('access_token', '')}"
        else:
            auth = httpx.BasicAuth(
                str(connection.settings.get("username")), str(secrets.get("password"))
            )
        dags = f"{url}/api/{version}/dags"
        answer = await _get(
            client, "GET", dags, "Airflow", params={"limit": 1}, headers=headers, auth=auth
        )
        if answer.status_code in (401, 403):
            raise _refused("Airflow", url, answer)
        if answer.status_code >= 300:
            raise _unexpected("Airflow", url, answer)
    return f"Airflow at {url_origin(url)} answered and accepted the credentials"


async def _prefect(connection: ResolvedConnection, timeout: float) -> str:
    url = str(connection.settings["url"]).rstrip("/")
    secrets = connection.secrets
    headers: dict[str, str] = {}
    auth: httpx.BasicAuth | None = None
    if "api_key" in secrets:
        headers["Authorization"] = f"Bearer {secrets['api_key']}"
    elif "auth_string" in secrets:
        user, _, password = str(secrets["auth_string"]).partition(":")
        auth = httpx.BasicAuth(user, password)
    async with httpx.AsyncClient(timeout=timeout) as client:
        answer = await _get(client, "GET", f"{url}/health", "Prefect")
        if answer.status_code >= 500 or answer.status_code == 404:
            raise _unexpected("Prefect", url, answer)
        answer = await _get(
            client,
            "POST",
            f"{url}/flows/filter",
            "Prefect",
            json={"limit": 1},
            headers=headers,
            auth=auth,
        )
        if answer.status_code in (401, 403):
            raise _refused("Prefect", url, answer)
        if answer.status_code >= 300:
            raise _unexpected("Prefect", url, answer)
    return f"Prefect at {url_origin(url)} answered and accepted the credentials"


async def _http(connection: ResolvedConnection, timeout: float) -> str:
    from interlock.service.connections.http import headers_of  # noqa: PLC0415

    url = str(connection.settings["base_url"])
    async with httpx.AsyncClient(timeout=timeout) as client:
        answer = await _get(client, "GET", url, "the HTTP endpoint", headers=headers_of(connection))
    if answer.status_code in (401, 403):
        raise _refused("the HTTP endpoint", url, answer)
    return f"{url_origin(url)} answered HTTP {answer.status_code} (credentials not refused)"


async def _s3(connection: ResolvedConnection, timeout: float) -> str:
    try:
        import boto3  # noqa: PLC0415 - the adapters' [s3] extra
        import botocore.config  # noqa: PLC0415
        import botocore.exceptions  # noqa: PLC0415
    except ImportError:
        raise _Failed(
            "failed",
            "cannot test S3: boto3 is not installed (pip install 'interlock-adapters[s3]')",
        ) from None
    settings, secrets = connection.settings, connection.secrets
    endpoint = settings.get("endpoint_url")
    where = url_origin(str(endpoint)) if endpoint else f"S3 ({settings.get('region', 'default')})"

    def call() -> None:
        session = boto3.session.Session(
            aws_access_key_id=settings.get("access_key_id"),
            aws_secret_access_key=secrets.get("secret_access_key"),
            aws_session_token=secrets.get("session_token"),
            region_name=settings.get("region"),
        )
        config = botocore.config.Config(
            connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}
        )
        if settings.get("role_arn"):
            sts = session.client("sts", endpoint_url=endpoint, config=config)
            assumed = sts.assume_role(
                RoleArn=settings["role_arn"], RoleSessionName="interlock-connection-test"
            )["Credentials"]
            session = boto3.session.Session(
                aws_access_key_id=assumed["AccessKeyId"],
                aws_secret_access_key=assumed["SecretAccessKey"],
                aws_session_token=assumed["SessionToken"],
                region_name=settings.get("region"),
            )
        session.client("s3", endpoint_url=endpoint, config=config).list_buckets()

    try:
        await asyncio.to_thread(call)
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        refused = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken"}
        outcome: Outcome = "refused" if code in refused else "failed"
        raise _Failed(outcome, f"{where} answered {code or 'an error'}") from None
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError):
        raise _Failed("unreachable", f"{where} does not answer") from None
    except botocore.exceptions.NoCredentialsError:
        raise _Failed("refused", f"{where}: no credentials (give keys or a role)") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise _Failed("failed", f"{where}: {type(exc).__name__}") from None
    return f"{where} answered and accepted the credentials"


async def _database(connection: ResolvedConnection, timeout: float) -> str:
    import sqlalchemy as sa  # noqa: PLC0415

    url = str(connection.secrets["url"])
    shown = str(connection.settings.get("url", "the database"))
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")

    def call() -> None:
        args = {"connect_timeout": int(max(timeout, 1))} if "psycopg" in url else {}
        engine = sa.create_engine(url, connect_args=args)
        try:
            with engine.connect() as connection_:
                connection_.execute(sa.text("SELECT 1"))
        finally:
            engine.dispose()

    try:
        await asyncio.to_thread(call)
    except sa.exc.OperationalError as exc:
        text = str(exc.orig if exc.orig is not None else exc).splitlines()[0]
        lowered = text.lower()
        if "authentication" in lowered or "password" in lowered or "role" in lowered:
            raise _Failed(
                "refused", f"{shown} answered but refused the credentials ({text})"
            ) from None
        raise _Failed("unreachable", f"{shown} does not answer ({text})") from None
    except (sa.exc.SQLAlchemyError, ImportError, ValueError) as exc:
        raise _Failed(
            "failed", f"{shown}: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from None
    return f"{shown} answered SELECT 1"


async def _apprise(connection: ResolvedConnection, timeout: float) -> str:
    target = f"channel {connection.name!r}"
    try:
        await apprise_send.send(
            str(connection.secrets["url"]),
            title="Interlock connection test",
            body=f"A test of the connection {connection.name!r} from Interlock.",
            timeout=timeout,
            target=target,
        )
    except ActionFailed as exc:
        outcome: Outcome = "failed" if "not a valid" in str(exc) else "unreachable"
        raise _Failed(outcome, str(exc)) from None
    return f"a test notification was sent to {target}"


_CHECKS: dict[str, Callable[[ResolvedConnection, float], Awaitable[str]]] = {
    "airflow": _airflow,
    "prefect": _prefect,
    "http": _http,
    "s3": _s3,
    "database": _database,
    "apprise": _apprise,
}
