"""Opening a NATS connection from :class:`~interlock.sdk.config.NatsOptions`.

One place turns our options (URLs, user/password, token, ``.creds`` file, TLS) into a
``nats-py`` client that reconnects forever, and turns connection failures into
:class:`~interlock.sdk.errors.BusError` with the servers that were tried.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client as NATS

from interlock.sdk.config import NatsOptions
from interlock.sdk.errors import BusError, ConfigurationError

__all__ = ["connect", "tls_context"]

logger = logging.getLogger(__name__)

Callback = Callable[[], Awaitable[None]]


def tls_context(options: NatsOptions) -> ssl.SSLContext | None:
    """Return the TLS context the options ask for, or ``None`` when TLS is not configured."""
    if options.tls_ca_file is None and options.tls_cert_file is None:
        if any(url.startswith("tls://") for url in options.servers):
            return ssl.create_default_context()
        return None
    context = ssl.create_default_context(
        cafile=str(options.tls_ca_file) if options.tls_ca_file else None
    )
    if options.tls_cert_file is not None and options.tls_key_file is not None:
        context.load_cert_chain(str(options.tls_cert_file), str(options.tls_key_file))
    return context


async def connect(
    options: NatsOptions,
    *,
    disconnected_cb: Callback | None = None,
    reconnected_cb: Callback | None = None,
    timeout: float | None = None,
) -> NATS:
    """Connect to NATS and return the client; it reconnects by itself from then on.

    Args:
        options: Where the servers are and how to authenticate.
        disconnected_cb: Called when the connection is lost.
        reconnected_cb: Called when it is back.
        timeout: Longest time to wait for the first connection (default: the
            options' ``connect_timeout`` per server, plus one second).

    Raises:
        BusError: no server could be reached in time, or authentication failed.
    """
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        # nats-py reports why a server refused us (authorization, TLS) only here; its
        # connect() then raises a bare NoServersError. Keep the reason for our error.
        errors.append(exc)
        logger.warning("NATS connection error: %s", exc or type(exc).__name__)

    def reason(default: str) -> str:
        # A server's refusal (authorization, TLS) says more than the transport errors
        # of the retries after it (a reset connection), whatever their order.
        refusals = [e for e in errors if _REFUSAL.search(str(e) or type(e).__name__)]
        for exc in reversed(refusals or errors):
            text = str(exc) or type(exc).__name__
            if not isinstance(exc, nats.errors.NoServersError):
                return f"{default}: {text}" if default else text
        return default

    kwargs: dict[str, Any] = {
        "servers": list(options.servers),
        "name": options.name,
        "connect_timeout": options.connect_timeout,
        "reconnect_time_wait": options.reconnect_wait,
        "allow_reconnect": True,
        "dont_randomize": not options.randomize,
        "error_cb": on_error,
    }
    if disconnected_cb is not None:
        kwargs["disconnected_cb"] = disconnected_cb
    if reconnected_cb is not None:
        kwargs["reconnected_cb"] = reconnected_cb
    if options.user is not None:
        kwargs["user"] = options.user
        kwargs["password"] = options.password
    if options.token is not None:
        kwargs["token"] = options.token
    if options.credentials_file is not None:
        kwargs["user_credentials"] = str(options.credentials_file)
    try:
        context = tls_context(options)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(
            "nats.tls", f"cannot load the TLS CA, certificate or key: {exc}"
        ) from exc
    if context is not None:
        kwargs["tls"] = context

    client = NATS()
    limit = timeout if timeout is not None else options.connect_timeout * len(options.servers) + 1
    # nats-py retries a first connection forever when max_reconnect_attempts is -1, and
    # does not reliably stop when cancelled: connect with a finite number of attempts in
    # a task of its own, bounded by `limit`, then switch to reconnecting forever.
    kwargs["max_reconnect_attempts"] = 1
    attempt = asyncio.ensure_future(client.connect(**kwargs))
    try:
        done, _ = await asyncio.wait({attempt}, timeout=limit)
    except asyncio.CancelledError:
        attempt.cancel()
        raise
    if not done:
        attempt.cancel()
        await _discard(client)
        raise BusError(list(options.servers), reason(f"no server answered within {limit:g}s"))
    failure = attempt.exception()
    if failure is not None:
        await _discard(client)
        if isinstance(failure, (OSError, nats.errors.Error)):
            cause = reason("") or str(failure) or type(failure).__name__
            raise BusError(list(options.servers), cause) from failure
        raise failure
    client.options["max_reconnect_attempts"] = -1
    return client


_REFUSAL = re.compile(r"authori[sz]ation|authentication|permission|certificate", re.IGNORECASE)


async def _discard(client: NATS) -> None:
    try:
        await client.close()
    except Exception:
        logger.debug("closing a failed NATS connection raised", exc_info=True)
