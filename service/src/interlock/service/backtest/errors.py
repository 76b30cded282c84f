"""What can go wrong before or during a backtest.

::

    InterlockError
    └── BacktestError                  a backtest could not run (the message says why)
        └── HorizonError(ValueError)   --since / --until / --warmup cannot be read
"""

from __future__ import annotations

from interlock.sdk.errors import InterlockError

__all__ = ["BacktestError", "HorizonError"]


class BacktestError(InterlockError):
    """A backtest could not run: no rules, no stream, NATS unreachable.

    Attributes:
        reason: What went wrong, in one line.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class HorizonError(BacktestError, ValueError):
    """An option of the horizon (``since``, ``until``, ``warmup``) cannot be read.

    Attributes:
        option: The option's name (``--since``).
        value: What was given.
    """

    def __init__(self, option: str, value: str, hint: str) -> None:
        self.option = option
        self.value = value
        super().__init__(f"{option} {value!r}: {hint}")
