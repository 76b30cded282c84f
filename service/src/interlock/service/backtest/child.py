"""``python -m interlock.service.backtest.child``: one replay in a process of its own.

The service runs the API's backtest jobs this way (:mod:`.jobs`), not in its own
process: a replay is CPU-bound Python (a thread would hold the GIL against the live
pipeline), it builds durable_rules rulesets whose C memory is not garbage collected,
and a crash in it must not take the service down.

Protocol: one line of JSON on stdin (:class:`ChildRequest`), then stdin stays open;
on stdout, lines of JSON: ``{"progress": Progress}`` at most five times a second, then
one ``{"result": Replayed}`` or ``{"error": "one line"}``. The child exits when its
stdin closes (the service stopped or cancelled the job).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from datetime import datetime
from typing import Any

import msgspec

from interlock.rules.rule import load_rules
from interlock.sdk import NatsOptions
from interlock.sdk.errors import InterlockError
from interlock.service.backtest.horizon import Horizon
from interlock.service.backtest.progress import Progress
from interlock.service.backtest.run import replay_stream

__all__ = ["ChildRequest", "main"]

_EVERY = 0.2


class ChildRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What the child replays."""

    rules: msgspec.Raw
    """The rules document (:func:`interlock.rules.rule.dump_rules`)."""
    start: datetime
    since: datetime
    until: datetime
    nats: NatsOptions


def _write(document: dict[str, Any]) -> None:
    sys.stdout.buffer.write(msgspec.json.encode(document) + b"\n")
    sys.stdout.buffer.flush()


def _exit_when_orphaned() -> None:
    """Exit as soon as stdin closes: the service is gone or cancelled the job."""
    sys.stdin.buffer.read()
    os._exit(3)


async def _replay(request: ChildRequest) -> None:
    rules = load_rules(bytes(request.rules))
    horizon = Horizon(start=request.start, since=request.since, until=request.until)
    last = 0.0

    def progress(state: Progress) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= _EVERY:
            last = now
            _write({"progress": state})

    replayed = await replay_stream(rules, horizon, request.nats, on_progress=progress)
    _write({"result": replayed})


def main() -> int:
    """Read the request, replay, write the result; the exit status is 0 unless it failed."""
    line = sys.stdin.buffer.readline()
    threading.Thread(target=_exit_when_orphaned, daemon=True).start()
    try:
        request = msgspec.json.decode(line, type=ChildRequest)
        asyncio.run(_replay(request))
    except (InterlockError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        _write({"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
        return 1
    except Exception as exc:  # noqa: BLE001 - the child's boundary: reported to the job
        _write({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
