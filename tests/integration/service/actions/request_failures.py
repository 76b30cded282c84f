"""Helpers of the tests of approval requests that do not go out: a closed port, a retry
policy the test drives with a ``FakeClock``, and waiting for an attempt's outcome."""

from __future__ import annotations

import socket

from interlock.service.context import Services

__all__ = ["RETRY", "attempted", "closed_port"]

RETRY = {"backoff_initial": "1m", "backoff_max": "1m"}
"""Every retry within a minute of the failure: due once the test moves the clock 1 m."""


def closed_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def attempted(services: Services, rule: str, attempts: int) -> bool:
    """The rule's approve step was tried ``attempts`` times, and the dispatcher recorded
    the last one's failure (its row is no longer ``running``)."""
    step = (await services.store.outbox.list(rule=rule))[0]
    return step.attempts == attempts and step.state in ("pending", "failed")
