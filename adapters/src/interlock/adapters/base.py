"""What every polling adapter is: a source polled from a checkpoint into events.

An adapter turns "what changed at the source since the checkpoint" into Interlock events
with **deterministic ids** (a UUID5 of the source identity: bucket + key + etag, dag id +
run id + state), so a repeated poll re-publishes duplicates that JetStream drops. The
:class:`~interlock.adapters.runner.AdapterRunner` publishes a poll's events *before* it
saves the new checkpoint: a crash in between repeats a poll, it never skips one.

Errors::

    InterlockError
    ├── ConfigurationError (ValueError)
    │   └── AdapterConfigError          a bad option: names the adapter and the option
    └── SourceError
        ├── SourceUnavailable (ConnectionError)   down or unreachable: retried with backoff
        └── SourceRefused (PermissionError)       bad credentials, missing bucket or table
"""

from __future__ import annotations

import abc
import uuid
from typing import Any, ClassVar

import msgspec

from interlock.sdk.errors import ConfigurationError, InterlockError
from interlock.sdk.event import Event

__all__ = [
    "AdapterConfigError",
    "PollResult",
    "PollingAdapter",
    "SourceError",
    "SourceRefused",
    "SourceUnavailable",
    "deterministic_id",
]

_NAMESPACE = uuid.UUID("a8d7c1e2-52f4-4c8e-9b0a-6d3f1e2c4b57")


def deterministic_id(*parts: object) -> uuid.UUID:
    """The event id for a source identity: the same parts always give the same id."""
    return uuid.uuid5(_NAMESPACE, "\x1f".join(str(part) for part in parts))


class AdapterConfigError(ConfigurationError):
    """An adapter option is missing or invalid."""

    def __init__(self, adapter: str, option: str, reason: str) -> None:
        self.adapter = adapter
        super().__init__(f"adapter {adapter!r}: {option}", reason)


class SourceError(InterlockError):
    """The source could not be polled.

    Attributes:
        adapter: The adapter's name.
        reason: What went wrong, in the source's own words where possible.
    """

    def __init__(self, adapter: str, reason: str) -> None:
        self.adapter = adapter
        self.reason = reason
        super().__init__(f"adapter {adapter!r}: {reason}")


class SourceUnavailable(SourceError, ConnectionError):
    """The source is down or unreachable; polling is retried with backoff."""


class SourceRefused(SourceError, PermissionError):
    """The source refused: bad credentials, a missing bucket or table. Not retried."""


class PollResult(msgspec.Struct, kw_only=True):
    """Events found by one poll, and the checkpoint to save once they are published."""

    events: list[Event]
    checkpoint: dict[str, Any]
    more: bool = False
    """The poll stopped at a page limit: poll again at once rather than after the interval."""
    receipts: list[str] = msgspec.field(default_factory=list)
    """Tokens the source wants back once the events are published (SQS receipt handles):
    the runner hands the result to :meth:`PollingAdapter.acknowledge` after publishing."""


class PollingAdapter(abc.ABC):
    """A source polled from a checkpoint.

    Subclasses set ``kind`` (the entry-point name in ``interlock.adapters``), build
    themselves from options with :meth:`from_options`, and implement :meth:`poll`.
    """

    kind: ClassVar[str]

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    @abc.abstractmethod
    def from_options(cls, name: str, options: dict[str, Any]) -> PollingAdapter:
        """Build the adapter from its configuration section.

        Raises:
            AdapterConfigError: an option is missing or invalid (named in the error).
        """

    @abc.abstractmethod
    def poll(self, checkpoint: dict[str, Any] | None) -> PollResult:
        """Return what changed since ``checkpoint`` (``None``: first poll).

        Raises:
            SourceUnavailable: the source is down; the runner retries with backoff.
            SourceRefused: the source refused; the runner stops with this error.
        """

    def acknowledge(self, result: PollResult) -> None:  # noqa: B027 - optional hook
        """Tell the source that ``result``'s events are published and its checkpoint saved.

        A queue-backed adapter deletes the messages behind ``result.receipts`` here, so a
        message leaves the queue only once its events are stored or spooled. Polling
        adapters whose checkpoint is their whole state need nothing here.

        Raises:
            SourceUnavailable: the source could not be told; it redelivers, and the
                repeated events (same ids) are dropped as duplicates.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections."""
