"""The connection options shared by the REST bridge's TOML section and the executors' actions.

Options are read with the shared :class:`~interlock.adapters.option_reader.OptionReader`
(typed values; an option nobody asked for is a typo and an error). Secrets may be given
inline (``password``, ``token``) or, better, as the name of an environment variable that
holds them (``password_env``, ``token_env``), so the file holds no secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

from interlock.adapters.airflow._client import Connection
from interlock.adapters.option_reader import OptionReader

__all__ = ["OptionReader", "read_connection"]  # OptionReader re-exported for the bridge


def _secret(reader: OptionReader, option: str, environ: Mapping[str, str]) -> str | None:
    inline = reader.string(option)
    variable = reader.string(f"{option}_env")
    if inline is not None and variable is not None:
        raise reader.error(option, f"give {option} or {option}_env, not both")
    if variable is None:
        return inline
    value = environ.get(variable)
    if not value:
        raise reader.error(f"{option}_env", f"the environment variable {variable} is not set")
    return value


def read_connection(reader: OptionReader, environ: Mapping[str, str] | None = None) -> Connection:
    """Read the connection options of the bridge and the executors.

    ``url``, ``api_version``, ``username``, ``password`` or ``password_env``, ``token`` or
    ``token_env``, ``timeout``.

    Raises:
        AdapterConfigError: an option is missing or invalid (named in the error).
    """
    env = os.environ if environ is None else environ
    url = reader.required_string("url", "http://airflow:8080")
    if not url.startswith(("http://", "https://")):
        raise reader.error("url", f"must be an http:// or https:// URL, not {url!r}")
    api_version = reader.string("api_version", "v2")
    if api_version not in ("v1", "v2"):
        raise reader.error(
            "api_version", f"must be 'v2' (Airflow 3) or 'v1' (Airflow 2), not {api_version!r}"
        )
    username = reader.string("username")
    password = _secret(reader, "password", env)
    token = _secret(reader, "token", env)
    if token is None and username is None:
        raise reader.error("username", "give a username and password, or a token")
    if username is not None and password is None and token is None:
        raise reader.error("password", f"is required with username = {username!r}")
    timeout = reader.duration("timeout", timedelta(seconds=10), maximum=timedelta(minutes=5))
    return Connection(
        url=url,
        api_version="v1" if api_version == "v1" else "v2",
        username=username,
        password=password,
        token=token,
        timeout=max(timeout.total_seconds(), 0.1),
    )
