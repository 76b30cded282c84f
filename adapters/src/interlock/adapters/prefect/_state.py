"""The bridge's checkpoint: how far into Prefect's event stream it got, and what it saw.

Prefect's events websocket replays from a time (its filter's ``occurred.since``), not
from a position, so resuming means asking again from a little before the last event
(``lookback``) and dropping what was already published. The checkpoint holds:

- ``resume``: the later of the newest ``occurred`` seen and the time the last connection
  opened (every event after that was streamed live), as RFC 3339;
- ``seen``: the ids (and ``occurred``) of events within ``lookback`` of ``resume``: the
  ones a replay from ``resume - lookback`` sends again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from interlock.sdk.compat import fromisoformat

__all__ = ["StreamState"]

MAX_SEEN = 10_000
"""The most ids a checkpoint keeps (the newest by ``occurred``)."""


class StreamState:
    """Mutable resume point and recently seen ids; round-trips through a JSON checkpoint."""

    def __init__(self, resume: datetime | None = None, seen: dict[str, str] | None = None):
        self.resume = resume
        self.seen: dict[str, datetime] = {
            key: fromisoformat(value) for key, value in (seen or {}).items()
        }

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any] | None) -> StreamState:
        """Read a checkpoint written by :meth:`to_checkpoint` (``None``: a fresh start).

        Raises:
            ValueError: the checkpoint is not one of this adapter's.
        """
        if not checkpoint:
            return cls()
        resume = checkpoint.get("resume")
        seen = checkpoint.get("seen", {})
        if not isinstance(seen, dict) or (resume is not None and not isinstance(resume, str)):
            raise ValueError("not a prefect.events checkpoint (expected 'resume' and 'seen')")
        return cls(fromisoformat(resume) if resume else None, seen)

    def to_checkpoint(self) -> dict[str, Any]:
        """The state as JSON-compatible data."""
        return {
            "resume": self.resume.isoformat() if self.resume else None,
            "seen": {key: value.isoformat() for key, value in self.seen.items()},
        }

    def since(self, lookback: timedelta) -> datetime | None:
        """Where a new connection asks Prefect to start: ``resume - lookback``."""
        return None if self.resume is None else self.resume - lookback

    def connected(self, at: datetime) -> None:
        """A connection opened at ``at``: whatever happens from now on is streamed live."""
        if self.resume is None or at > self.resume:
            self.resume = at

    def is_new(self, event_id: str) -> bool:
        """Whether the event ``event_id`` was not yet published."""
        return event_id not in self.seen

    def add(self, event_id: str, occurred: datetime) -> None:
        """Remember a published event (call :meth:`trim` after a batch)."""
        self.seen[event_id] = occurred
        if self.resume is None or occurred > self.resume:
            self.resume = occurred

    def trim(self, lookback: timedelta) -> None:
        """Forget ids that a replay from ``resume - lookback`` cannot send again."""
        if self.resume is None:
            return
        floor = self.resume - lookback
        kept = sorted(
            ((key, value) for key, value in self.seen.items() if value >= floor),
            key=lambda item: item[1],
        )
        self.seen = dict(kept[-MAX_SEEN:])
