"""Run policies: how often a failed run is tried again, and how long an attempt may take.

A deployment's ``policy`` (JSON, every field optional)::

    {"retries": 2, "retry_delay": 10, "backoff": 2, "timeout": 600}

- ``retries``: attempts after the first one (0 to 100; default 0). A failed attempt
  (exit status not 0, a remote run that failed, an HTTP error, a timeout) with retries
  left goes back to ``scheduled`` with ``attempt`` + 1, due after its delay; a cancelled
  or crashed run is never retried.
- ``retry_delay``: seconds before the first retry (0 to 86,400; default 0).
- ``backoff``: each later retry waits this factor longer (1 to 10; default 1):
  attempt *n*'s retry waits ``retry_delay * backoff ** (n - 1)``.
- ``timeout``: seconds one attempt may run (up to 7 days; default none). A process is
  terminated, a remote run cancelled, and the attempt fails ``timed out after Ns``.

The deployment's ``concurrency_limit`` (a column of its own, honoured by the claim with
its queue's: :meth:`~interlock.service.store.runs.RunClaims.claim`) is the third policy.
A worker sends a failed attempt with retries left back through its ledger
(:meth:`~interlock.service.deployments.ledger.RunLedger.retry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from interlock.service.store import InvalidRecord

__all__ = ["POLICY_FIELDS", "RunPolicy", "parse_policy"]

_MAX_RETRIES = 100
_MAX_DELAY = 86_400.0
_MAX_BACKOFF = 10.0
_MAX_TIMEOUT = 7 * 86_400.0
POLICY_FIELDS = ("retries", "retry_delay", "backoff", "timeout")
"""The fields of a policy."""


class RunPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """A checked run policy (see the module's docstring)."""

    retries: int = 0
    retry_delay: float = 0.0
    backoff: float = 1.0
    timeout: float | None = None

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retrying after attempt ``attempt`` (1-based) failed."""
        return self.retry_delay * self.backoff ** (attempt - 1)

    def retries_after(self, attempt: int) -> bool:
        """Whether attempt ``attempt`` failing leaves one more."""
        return attempt <= self.retries

    def as_json(self) -> dict[str, Any]:
        """The stored form: only what differs from the defaults."""
        stored: dict[str, Any] = {}
        for field, default in (("retries", 0), ("retry_delay", 0.0), ("backoff", 1.0)):
            if getattr(self, field) != default:
                stored[field] = getattr(self, field)
        if self.timeout is not None:
            stored["timeout"] = self.timeout
        return stored


def _number(deployment: str, field: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidRecord(
            "deployment",
            deployment,
            f"policy.{field}",
            f"must be a number from {low:g} to {high:g}",
        )
    return float(value)


def parse_policy(deployment: str, policy: Mapping[str, Any] | None) -> RunPolicy:
    """Check a stored or given policy.

    Raises:
        InvalidRecord: a field is unknown or out of range (named in the message).
    """
    if not policy:
        return RunPolicy()
    if not isinstance(policy, Mapping):
        raise InvalidRecord("deployment", deployment, "policy", "must be an object")
    unknown = sorted(set(policy) - set(POLICY_FIELDS))
    if unknown:
        raise InvalidRecord(
            "deployment",
            deployment,
            f"policy.{unknown[0]}",
            f"is not a policy field ({', '.join(POLICY_FIELDS)})",
        )
    retries = policy.get("retries", 0)
    if (
        isinstance(retries, bool)
        or not isinstance(retries, int)
        or not 0 <= retries <= _MAX_RETRIES
    ):
        raise InvalidRecord(
            "deployment",
            deployment,
            "policy.retries",
            f"must be a whole number 0 to {_MAX_RETRIES}",
        )
    timeout = policy.get("timeout")
    return RunPolicy(
        retries=retries,
        retry_delay=_number(deployment, "retry_delay", policy.get("retry_delay", 0), 0, _MAX_DELAY),
        backoff=_number(deployment, "backoff", policy.get("backoff", 1), 1, _MAX_BACKOFF),
        timeout=None
        if timeout is None
        else _number(deployment, "timeout", timeout, 0.001, _MAX_TIMEOUT),
    )
