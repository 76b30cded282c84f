"""The store's errors: a branch of the Interlock exception tree.

::

    InterlockError
    └── StoreError                          the database refused, failed, or is misconfigured
        ├── StoreUnavailable (ConnectionError)  the database cannot be reached now; retry
        ├── NotFound (LookupError)              no record of that kind with that name
        ├── AlreadyExists (ValueError)          a record of that kind has that name already
        ├── InvalidRecord (ValueError)          a value given to the store is malformed
        ├── InvalidTransition (ValueError)      a run cannot move from its state to that one
        ├── InUse (ValueError)                  a record others still depend on (a deployment
        │                                       with runs not finished)
        ├── RuleUnreadable (ValueError)         a stored rule no longer reads as a rule
        └── Fenced                              a newer owner holds the engine: this
                                                replica's writes are refused (scale-out)

Messages name the database by its URL with the password hidden, and never hold a secret
(a channel's Apprise URL, an API token): SQL parameters are hidden too.
"""

from __future__ import annotations

from interlock.sdk.errors import InterlockError

__all__ = [
    "AlreadyExists",
    "Fenced",
    "InUse",
    "InvalidRecord",
    "InvalidTransition",
    "NotFound",
    "RuleUnreadable",
    "StoreError",
    "StoreUnavailable",
]


class StoreError(InterlockError):
    """The database refused or failed a request, or cannot be used as configured.

    Attributes:
        reason: What went wrong and, where known, how to fix it.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class StoreUnavailable(StoreError, ConnectionError):
    """The database cannot be reached (down, restarting, refusing connections).

    Attributes:
        database: The database URL with its password hidden.
        reason: What the driver said.
    """

    def __init__(self, database: str, reason: str) -> None:
        self.database = database
        super().__init__(f"database {database} is unavailable: {reason}")
        self.reason = reason


class NotFound(StoreError, LookupError):
    """No record of ``kind`` is called ``name``.

    Attributes:
        kind: ``rule``, ``channel``, ``deployment``, ``queue``, ``run``, ``action``, ...
        name: The name or id looked up.
    """

    def __init__(self, kind: str, name: object) -> None:
        self.kind = kind
        self.name = str(name)
        super().__init__(f"no {kind} {self.name!r}")


class AlreadyExists(StoreError, ValueError):
    """A record of ``kind`` called ``name`` exists already.

    Attributes:
        kind: The kind of record.
        name: Its name.
    """

    def __init__(self, kind: str, name: object) -> None:
        self.kind = kind
        self.name = str(name)
        super().__init__(f"{kind} {self.name!r} exists already")


class InvalidRecord(StoreError, ValueError):
    """A value given for a record of ``kind`` called ``name`` is malformed.

    Attributes:
        kind: The kind of record.
        name: Its name.
        field: The offending field.
        reason: What is wrong and what is expected (never the value, which may be secret).
    """

    def __init__(self, kind: str, name: object, field: str, reason: str) -> None:
        self.kind = kind
        self.name = str(name)
        self.field = field
        super().__init__(f"{kind} {self.name!r}: {field} {reason}")
        self.reason = reason


class InvalidTransition(StoreError, ValueError):
    """A run may not move from its current state to the requested one.

    Attributes:
        run_id: The run.
        current: Its state now.
        requested: The state asked for.
        allowed: The states it may move to from ``current``.
    """

    def __init__(
        self, run_id: object, current: str, requested: str, allowed: tuple[str, ...]
    ) -> None:
        self.run_id = str(run_id)
        self.current = current
        self.requested = requested
        self.allowed = allowed
        then = ", ".join(allowed) if allowed else "nothing (it is over)"
        super().__init__(
            f"run {self.run_id} is {current} and cannot become {requested}; "
            f"from {current} it may become {then}"
        )


class InUse(StoreError, ValueError):
    """A record cannot be deleted while others still depend on it.

    Attributes:
        kind: What it is (``"deployment"``).
        name: Its name.
        reason: What depends on it and how to free it.
    """

    def __init__(self, kind: str, name: str, reason: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} {name!r} {reason}")
        self.reason = reason


class RuleUnreadable(StoreError, ValueError):
    """The stored definition of rule ``name`` cannot be read as a rule any more.

    It was valid when applied; this version of Interlock refuses it (an upgrade changed
    what is accepted). The rule is quarantined: listed as broken, never run.

    Attributes:
        name: The rule's name.
        problem: Why its definition is refused.
    """

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem
        super().__init__(
            f"rule {name!r}: its stored definition cannot be read ({problem}); apply a "
            "fixed version of it, or delete it"
        )


class Fenced(StoreError):
    """A batch was refused: a newer owner claimed the checkpoint ``name`` (scale-out).

    The replica that wrote it lost its lease (it was paused, partitioned, or too slow to
    renew); it must stop its engine. Never retried: retrying cannot succeed.

    Attributes:
        name: The checkpoint row (``default``: the one engine of step 1).
        epoch: This replica's epoch.
        current: The epoch the row holds (``None``: the row is gone).
    """

    def __init__(self, name: str, epoch: int, current: int | None) -> None:
        self.name = name
        self.epoch = epoch
        self.current = current
        holder = f"epoch {current}" if current is not None else "no claim (the row is gone)"
        super().__init__(
            f"checkpoint {name!r} belongs to {holder}, not to this replica's epoch {epoch}: "
            "another replica took the engine over; this one stops its engine"
        )
