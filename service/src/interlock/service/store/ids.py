"""Ids given by their first characters, as git and docker take them: :class:`Ids`.

Wherever a person types the id of a firing or a run, a unique prefix of it will do
(``1f2e3d4c`` for ``1f2e3d4c-5b6a-...``): at least :data:`MIN_PREFIX` hexadecimal
digits, dashes and case ignored. A prefix is a range of UUIDs, so the lookup is a range
scan of the primary key on SQLite (UUIDs stored as 32 hexadecimal characters) and
PostgreSQL (``uuid``, ordered by its bytes) alike.

Errors::

    StoreError
    ├── NotFound (LookupError)
    │   └── UnknownId                   no firing (run) whose id starts so; also for
    │                                   text that is no id at all, saying what an id is
    └── AmbiguousId (LookupError)       several do: the message lists them
"""

from __future__ import annotations

import re
import uuid
from typing import Final, Literal

import sqlalchemy as sa

from interlock.service.store import tables as t
from interlock.service.store.database import Database
from interlock.service.store.errors import NotFound, StoreError

__all__ = ["MIN_PREFIX", "AmbiguousId", "IdKind", "Ids", "UnknownId"]

MIN_PREFIX: Final = 4
"""The fewest hexadecimal digits a prefix may have (as git: fewer match too much)."""

IdKind = Literal["firing", "run"]
_COLUMNS: Final = {"firing": t.firings.c.id, "run": t.runs.c.id}
_HEX = re.compile(r"[0-9a-f]{1,32}")
_SHOWN = 5


class AmbiguousId(StoreError, LookupError):
    """Several records' ids start with the prefix given.

    Attributes:
        kind: ``firing`` or ``run``.
        prefix: The prefix given.
        candidates: Some of the matching ids (at most five).
    """

    def __init__(self, kind: str, prefix: str, candidates: list[uuid.UUID]) -> None:
        self.kind = kind
        self.prefix = prefix
        self.candidates = candidates
        listed = ", ".join(str(candidate) for candidate in candidates[:_SHOWN])
        more = " and more" if len(candidates) > _SHOWN else ""
        super().__init__(
            f"the {kind} id prefix {prefix!r} is ambiguous: it starts {listed}{more}; give "
            "more of the id"
        )


class UnknownId(NotFound):
    """No record's id is, or starts with, the text given; ``why`` says more."""

    def __init__(self, kind: str, text: str, why: str) -> None:
        super().__init__(kind, text)
        self.why = why
        self.args = (f"no {kind} with the id {text!r} ({why})",)


class Ids:
    """Resolves ids and unique id prefixes of firings and runs."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def resolve(self, kind: IdKind, text: str) -> uuid.UUID:
        """The id of the one ``kind`` whose id is, or starts with, ``text``.

        Raises:
            NotFound: none does (or ``text`` is no id, nor a prefix of one).
            AmbiguousId: several do.
        """
        digits = text.strip().lower().replace("-", "")
        if len(digits) == 32 and _HEX.fullmatch(digits):
            return uuid.UUID(digits)  # whole: whether it exists is the caller's lookup
        if not _HEX.fullmatch(digits):
            raise UnknownId(kind, text, "an id is 32 hexadecimal digits, dashes optional")
        if len(digits) < MIN_PREFIX:
            raise UnknownId(kind, text, f"give at least {MIN_PREFIX} hexadecimal digits of it")
        column = _COLUMNS[kind]
        low = uuid.UUID(digits.ljust(32, "0"))
        high = uuid.UUID(digits.ljust(32, "f"))
        query = (
            sa.select(column)
            .where(column >= low, column <= high)
            .order_by(column)
            .limit(_SHOWN + 1)
        )
        async with self._db.transaction() as connection:
            found = list((await connection.execute(query)).scalars())
        if not found:
            raise UnknownId(kind, text, f"no {kind} id starts so")
        if len(found) > 1:
            raise AmbiguousId(kind, text, found)
        return uuid.UUID(str(found[0]))
