"""The Interlock exception tree, shared by every package in the ``interlock`` namespace.

Every error Interlock raises on purpose derives from :class:`InterlockError`; each also
mixes in the builtin it resembles, so callers that only know Python's own exceptions
still catch it::

    InterlockError
    ├── ConfigurationError (ValueError)     a setting is missing or invalid
    ├── EventValidationError (ValueError)   an event breaks the wire contract
    ├── BusError (ConnectionError)          NATS is unreachable or refused a request
    ├── SpoolError (OSError)                the on-disk spool cannot take an event
    │   └── SpoolFullError                  the spool reached its size limit
    └── ActionFailed                        an executor did not carry an action out
                                            (``retryable``: try again, or give it up)

Each class builds its message in ``__init__`` from typed attributes, so the message
always says what is wrong, where, and how to fix it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ActionFailed",
    "BusError",
    "ConfigurationError",
    "EventValidationError",
    "InterlockError",
    "SpoolError",
    "SpoolFullError",
]


class InterlockError(Exception):
    """Base class of every error Interlock raises on purpose."""


class ConfigurationError(InterlockError, ValueError):
    """A setting is missing or invalid.

    Attributes:
        setting: The name of the setting (``nats.servers``, ``spool.max_bytes``, ...).
        reason: What is wrong with it and how to fix it.
    """

    def __init__(self, setting: str, reason: str) -> None:
        self.setting = setting
        self.reason = reason
        super().__init__(f"{setting}: {reason}")


class EventValidationError(InterlockError, ValueError):
    """An event does not satisfy the wire contract.

    Attributes:
        field: The dotted path of the offending field (``resource.id``, ``related[1].role``);
            empty when the document as a whole is wrong (not JSON, not an object).
        reason: What is wrong with the field.
        index: The event's position in the batch it came in (``None``: a lone event, or
            not known).
    """

    def __init__(self, field: str, reason: str, *, index: int | None = None) -> None:
        self.field = field
        self.reason = reason
        self.index = index
        problem = f"{field} {reason}" if field else reason
        super().__init__(problem if index is None else f"event [{index}]: {problem}")

    def at(self, index: int) -> EventValidationError:
        """The same error, naming the event's position in its batch."""
        return EventValidationError(self.field, self.reason, index=index)


class BusError(InterlockError, ConnectionError):
    """NATS could not be reached, or refused a request.

    Attributes:
        servers: The server URLs that were tried.
        reason: What went wrong.
    """

    def __init__(self, servers: list[str], reason: str) -> None:
        self.servers = list(servers)
        self.reason = reason
        super().__init__(f"NATS at {', '.join(servers)}: {reason}")


class SpoolError(InterlockError, OSError):
    """The on-disk spool could not store an event.

    Attributes:
        path: The spool directory.
        reason: What went wrong.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"spool {path}: {reason}")


class SpoolFullError(SpoolError):
    """The spool holds as many bytes as it may; the event was *not* stored.

    Attributes:
        used_bytes: Bytes held by the spool's segments now.
        max_bytes: The configured limit.
    """

    def __init__(self, path: Path, used_bytes: int, max_bytes: int) -> None:
        self.used_bytes = used_bytes
        self.max_bytes = max_bytes
        super().__init__(
            path,
            f"full ({used_bytes:,} of {max_bytes:,} bytes); the event was not stored. "
            "NATS has been unreachable for long enough to fill it: restore NATS so the "
            "spool drains, or raise the limit (spool_max_bytes / INTERLOCK_SPOOL_MAX_BYTES)",
        )


class ActionFailed(InterlockError):
    """An executor did not carry an action out (see :mod:`interlock.sdk.executors`).

    The message is shown to people and stored with the action: it names what failed
    and never holds a secret (an Apprise URL, a token, a password).

    Attributes:
        reason: The message.
        retryable: ``True``: the dispatcher tries again after its backoff, up to the
            action's attempts; ``False``: the action is given up at once (a missing
            field, an unknown target, refused credentials).
    """

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        self.reason = reason
        self.retryable = retryable
        super().__init__(reason)
