"""``interlock rules backtest``: what rules would have fired over the recorded stream.

A backtest reads ``INTERLOCK_EVENTS`` by time (an ephemeral consumer from
``since - warmup``, filtered to the rules' event names, stopping at the stream's last
sequence when it started), feeds a fresh engine in event time with the live pipeline's
watermark rule (:mod:`.replay`), drops the warm-up's firings, renders every action
without running it, and compares with the live firings by firing id (:mod:`.compare`).

Modules: :mod:`.horizon` (the span), :mod:`.subjects` (what to read), :mod:`.reader`
(reading the stream), :mod:`.replay` (the engine in event time), :mod:`.live` (the live
rules and firings: through the API or the store), :mod:`.compare`, :mod:`.report`,
:mod:`.progress`, :mod:`.run` (all of it), :mod:`.jobs` (backtests as API jobs).
"""

from interlock.service.backtest.errors import BacktestError, HorizonError
from interlock.service.backtest.horizon import Horizon, parse_horizon
from interlock.service.backtest.live import (
    ApiLiveRecord,
    LiveRecord,
    LiveRule,
    LiveVersion,
    StoreLiveRecord,
)
from interlock.service.backtest.progress import Progress, TerminalProgress
from interlock.service.backtest.report import BacktestReport, RuleReport, write_text
from interlock.service.backtest.run import compare_live, replay_stream, run_backtest

__all__ = [
    "ApiLiveRecord",
    "BacktestError",
    "BacktestReport",
    "Horizon",
    "HorizonError",
    "LiveRecord",
    "LiveRule",
    "LiveVersion",
    "Progress",
    "RuleReport",
    "StoreLiveRecord",
    "TerminalProgress",
    "compare_live",
    "parse_horizon",
    "replay_stream",
    "run_backtest",
    "write_text",
]
