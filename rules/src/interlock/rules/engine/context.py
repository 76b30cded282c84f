"""What a trigger state needs to know about time when it is fed or advanced."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Tick"]


@dataclass(frozen=True, slots=True)
class Tick:
    """The engine's clocks at one step.

    Attributes:
        now: Wall-clock time (from the injected clock).
        watermark: Event time up to which every event has been fed: a window whose
            deadline (plus grace) is after it cannot be judged yet, so a backlog delays
            decisions instead of producing false alarms.
        tolerance: A firing judged more than this after it was due is marked late.
        horizon: How far behind the watermark a late event is still expected: what
            could still count for it (an ``after`` window's expected events fed before
            it) is kept that long, and then forgotten.
    """

    now: datetime
    watermark: datetime
    tolerance: timedelta
    horizon: timedelta = timedelta(days=1)

    def late(self, due: datetime) -> bool:
        """Whether something due at ``due`` and decided now is late."""
        return self.now - due > self.tolerance
