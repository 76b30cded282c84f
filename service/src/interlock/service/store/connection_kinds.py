"""What each kind of connection holds, which of it is secret, and how it is checked.

A connection is given as one object of fields (``url``, ``username``, ``password``...);
its kind says which are settings (shown) and which are secrets (encrypted, never
shown): a database's ``url`` holds its password, so it is a secret there while an
Airflow ``url`` is a setting. See :mod:`interlock.sdk.connections` for the table.

:func:`split` checks the fields of a kind and splits them; every refusal is an
:class:`~interlock.service.store.errors.InvalidRecord` naming the connection and the
field, never repeating a secret's value. :func:`encode_secrets` / :func:`decode_secrets`
give the bytes that are encrypted: JSON of the secrets, except for ``apprise``, whose
secret is its bare URL (the form channels were stored in, so migrating them moved the
tokens unchanged).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from interlock.sdk.connections import CONNECTION_KINDS, ConnectionKind
from interlock.service.store.errors import InvalidRecord

__all__ = [
    "KINDS",
    "KindSpec",
    "check_kind",
    "decode_secrets",
    "encode_secrets",
    "split",
]

_APPRISE_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,63})://.")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_MAX_VALUE = 8192

Fields = dict[str, Any]
Check = Callable[[str, Fields, Fields], Fields]
"""(name, settings, secrets) -> settings derived for showing (e.g. a redacted URL)."""


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One kind: its setting and secret fields, the required ones, its own check."""

    kind: ConnectionKind
    settings: frozenset[str]
    secrets: frozenset[str]
    required: frozenset[str]
    check: Check

    @property
    def fields(self) -> frozenset[str]:
        """Every field a connection of this kind may be given."""
        return self.settings | self.secrets


def _bad(name: str, field: str, reason: str) -> InvalidRecord:
    return InvalidRecord("connection", name, field, reason)


def _http_url(name: str, field: str, value: object) -> str:
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _bad(name, field, "must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise _bad(name, field, "must not hold credentials (give them as secret fields)")
    return str(value)


def _airflow(name: str, settings: Fields, secrets: Fields) -> Fields:
    _http_url(name, "url", settings["url"])
    version = settings.setdefault("api_version", "v2")
    if version not in ("v1", "v2"):
        raise _bad(name, "api_version", "must be 'v2' (Airflow 3) or 'v1' (Airflow 2)")
    if "token" not in secrets and not ("username" in settings and "password" in secrets):
        raise _bad(name, "password", "give username and password, or a token")
    return {}


def _prefect(name: str, settings: Fields, secrets: Fields) -> Fields:
    _http_url(name, "url", settings["url"])
    if "api_key" in secrets and "auth_string" in secrets:
        raise _bad(name, "auth_string", "give api_key (Prefect Cloud) or auth_string, not both")
    return {}


def _s3(name: str, settings: Fields, secrets: Fields) -> Fields:
    if "endpoint_url" in settings:
        parts = urlsplit(str(settings["endpoint_url"]))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _bad(name, "endpoint_url", "must be an http:// or https:// URL")
    if ("access_key_id" in settings) != ("secret_access_key" in secrets):
        raise _bad(name, "secret_access_key", "give access_key_id and secret_access_key together")
    if "session_token" in secrets and "secret_access_key" not in secrets:
        raise _bad(name, "session_token", "needs access_key_id and secret_access_key")
    return {}


def _database(name: str, settings: Fields, secrets: Fields) -> Fields:
    url = str(secrets["url"])
    parts = urlsplit(url)
    if not parts.scheme or "://" not in url:
        raise _bad(name, "url", "is not a database URL (e.g. postgresql://user@host/db)")
    host = parts.hostname or ""
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    shown = urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, "", ""))
    return {"url": shown}


def _http(name: str, settings: Fields, secrets: Fields) -> Fields:
    _http_url(name, "base_url", settings["base_url"])
    headers = secrets.get("headers", {})
    if not isinstance(headers, dict):
        raise _bad(name, "headers", "must be an object of header names to values")
    for header, value in headers.items():
        if not _HEADER_NAME.fullmatch(str(header)):
            raise _bad(name, "headers", f"{str(header)[:40]!r} is not an HTTP header name")
        if not isinstance(value, str) or not value.isascii() or "\n" in value or "\r" in value:
            raise _bad(name, "headers", f"the value of {header} must be one line of ASCII")
    names = sorted(headers, key=str.lower)
    if "token" in secrets:
        names.append("Authorization")
    return {"header_names": names}


def _apprise(name: str, settings: Fields, secrets: Fields) -> Fields:
    match = _APPRISE_SCHEME.match(str(secrets["url"]))
    if match is None:
        raise _bad(
            name,
            "url",
            "is not an Apprise URL (scheme://...); see https://github.com/caronc/apprise/wiki",
        )
    return {"scheme": match[1].lower()}


def _spec(
    kind: ConnectionKind, settings: str, secrets: str, required: str, check: Check
) -> KindSpec:
    return KindSpec(
        kind=kind,
        settings=frozenset(settings.split()),
        secrets=frozenset(secrets.split()),
        required=frozenset(required.split()),
        check=check,
    )


KINDS: Mapping[ConnectionKind, KindSpec] = {
    spec.kind: spec
    for spec in (
        _spec("airflow", "url api_version username", "password token", "url", _airflow),
        _spec("prefect", "url", "api_key auth_string", "url", _prefect),
        _spec(
            "s3",
            "endpoint_url region access_key_id role_arn",
            "secret_access_key session_token",
            "",
            _s3,
        ),
        _spec("database", "", "url", "url", _database),
        _spec("http", "base_url", "headers token", "base_url", _http),
        _spec("apprise", "", "url", "url", _apprise),
    )
}
"""Every kind, by name."""


def check_kind(name: str, kind: object) -> KindSpec:
    """The spec of ``kind``.

    Raises:
        InvalidRecord: no such kind (the message lists the kinds).
    """
    if kind not in KINDS:
        raise _bad(name, "kind", f"must be one of {', '.join(CONNECTION_KINDS)}, not {kind!r}")
    return KINDS[kind]  # type: ignore[index]


def split(name: str, kind: object, fields: Mapping[str, Any]) -> tuple[KindSpec, Fields, Fields]:
    """Check ``fields`` for a connection of ``kind``; return (spec, settings, secrets).

    ``settings`` gains what the kind derives for showing (a URL without its password,
    an Apprise scheme, the names of an http connection's headers).

    Raises:
        InvalidRecord: an unknown kind or field, a missing or malformed one.
    """
    spec = check_kind(name, kind)
    settings: Fields = {}
    secrets: Fields = {}
    for field, value in fields.items():
        if field not in spec.fields:
            known = ", ".join(sorted(spec.fields))
            raise _bad(
                name, str(field)[:64], f"is not a field of {spec.kind} connections ({known})"
            )
        if value is None or value in ("", {}):
            continue
        if field != "headers" and not isinstance(value, str):
            raise _bad(name, field, f"must be a string, not {type(value).__name__}")
        if field != "headers" and len(value) > _MAX_VALUE:
            raise _bad(name, field, f"is longer than {_MAX_VALUE} characters")
        (secrets if field in spec.secrets else settings)[field] = value
    for field in sorted(spec.required):
        if field not in settings and field not in secrets:
            raise _bad(name, field, f"is required for {spec.kind} connections")
    derived = spec.check(name, settings, secrets)
    return spec, {**settings, **derived}, secrets


def encode_secrets(kind: str, secrets: Mapping[str, Any]) -> bytes:
    """The bytes that are encrypted (see the module's docstring)."""
    if kind == "apprise":
        return str(secrets["url"]).encode()
    return json.dumps(dict(secrets), sort_keys=True, separators=(",", ":")).encode()


def decode_secrets(kind: str, data: bytes) -> Fields:
    """The secrets :func:`encode_secrets` encoded."""
    if kind == "apprise":
        return {"url": data.decode()}
    value = json.loads(data)
    return dict(value) if isinstance(value, dict) else {}
