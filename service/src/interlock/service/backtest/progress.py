"""How far a backtest is, and a line on a terminal saying so.

:class:`Progress` is what a run reports (the API's job shows it as it is);
:class:`TerminalProgress` redraws one line on stderr at most five times a second:
the event time reached, events read, the rate and an estimate of the time left (from
the stream sequence reached between the first read and the last to read), with a bar
once the run has lasted a few seconds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TextIO

import msgspec

__all__ = ["Progress", "TerminalProgress"]

_REDRAW = 0.2
_BAR_AFTER = 3.0
_BAR_WIDTH = 24


class Progress(msgspec.Struct, kw_only=True):
    """A backtest's progress."""

    events: int = 0
    event_time: datetime | None = None
    """The stored time of the last message read."""
    first_sequence: int = 0
    sequence: int = 0
    last_sequence: int = 0
    """The last stream sequence it will read."""
    seconds: float = 0.0

    @property
    def fraction(self) -> float:
        """How much of the stream range is read (0 to 1)."""
        span = self.last_sequence - self.first_sequence
        if span <= 0 or self.sequence <= 0:
            return 1.0 if self.sequence >= self.last_sequence > 0 else 0.0
        return min(1.0, max(0.0, (self.sequence - self.first_sequence) / span))

    @property
    def eta(self) -> float | None:
        """Seconds left, estimated from the rate so far (``None``: too early to say)."""
        done = self.fraction
        if done <= 0.0 or self.seconds < 0.5:
            return None
        return self.seconds * (1 - done) / done


def _clock(seconds: float) -> str:
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02}:{second:02}" if hours else f"{minute}:{second:02}"


class TerminalProgress:
    """Draws a :class:`Progress` on one line of a terminal (``out``)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._drawn = 0.0
        self._width = 0

    def __call__(self, progress: Progress) -> None:
        """Redraw, at most every 0.2 s."""
        now = time.monotonic()
        if now - self._drawn < _REDRAW:
            return
        self._drawn = now
        when = progress.event_time
        reached = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if when else "-"
        rate = progress.events / progress.seconds if progress.seconds > 0 else 0.0
        eta = progress.eta
        left = f" · ETA {_clock(eta)}" if eta is not None else ""
        bar = ""
        if progress.seconds >= _BAR_AFTER:
            filled = round(progress.fraction * _BAR_WIDTH)
            bar = f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {progress.fraction:4.0%} "
        line = f"{bar}event time {reached} · {progress.events:,} events · {rate:,.0f}/s{left}"
        self._width = max(self._width, len(line))
        self._out.write("\r" + line.ljust(self._width))
        self._out.flush()

    def close(self) -> None:
        """Clear the line."""
        if self._width:
            self._out.write("\r" + " " * self._width + "\r")
            self._out.flush()
