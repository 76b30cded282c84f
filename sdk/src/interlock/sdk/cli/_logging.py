"""How ``interlock`` logs: to standard error, a line per record with its time, or JSON.

::

    2026-12-07T19:03:48.123+01:00 INFO interlock.service.server: interlock service running

``--log-format json`` writes one object per line instead, for a log shipper::

    {"time": "2026-12-07T18:03:48.123Z", "level": "INFO", "logger": "interlock.service.server",
     "message": "interlock service running", ...}

with the record's structured fields (``logger.info(..., extra={"rule": name})``) as keys
of their own and the traceback under ``exception``. Levels: ``-v`` (INFO), ``-vv``
(DEBUG), or ``--log-level``; a command sets its own default (``interlock server``: INFO,
the others: WARNING).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any, TextIO

__all__ = [
    "FORMATS",
    "LEVELS",
    "JsonFormatter",
    "TextFormatter",
    "add_logging_arguments",
    "configure_logging",
    "level_from",
]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
_QUIET_AT_INFO = ("apscheduler", "alembic", "nats", "aiosqlite", "httpx", "httpcore")
"""Libraries that log routine work at INFO; shown from DEBUG on."""
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


def _local_time(created: float) -> str:
    return datetime.fromtimestamp(created).astimezone().isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    """``<ISO 8601 local time> <LEVEL> <logger>: <message>``, then any traceback."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The record's time with its UTC offset, to the millisecond."""
        return _local_time(record.created)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        moment = datetime.fromtimestamp(record.created, tz=timezone.utc)
        document: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


def level_from(args: argparse.Namespace, default: str) -> str:
    """The level ``args`` ask for: ``--log-level``, else ``-v``/``-vv``, else ``default``."""
    chosen: str | None = getattr(args, "log_level", None)
    if chosen:
        return chosen.upper()
    verbose = getattr(args, "verbose", 0) or 0
    if verbose >= 2:
        return "DEBUG"
    if verbose == 1:
        return "INFO" if default.upper() not in ("INFO", "DEBUG") else "DEBUG"
    return default.upper()


def configure_logging(level: str, log_format: str = "text", stream: TextIO | None = None) -> None:
    """Send every record at ``level`` or above to ``stream`` (standard error), formatted."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet = logging.WARNING if logging.getLevelName(level) >= logging.INFO else logging.NOTSET
    for name in _QUIET_AT_INFO:
        logging.getLogger(name).setLevel(quiet)


def add_logging_arguments(parser: argparse.ArgumentParser, *, sub: bool = False) -> None:
    """Add ``-v``, ``--log-level`` and ``--log-format`` (to a command: only when given)."""
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if sub else {}
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        help="more logging: -v INFO, -vv DEBUG (logs go to standard error)",
        **({"default": argparse.SUPPRESS} if sub else {"default": 0}),
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LEVELS,
        metavar="LEVEL",
        help="DEBUG, INFO, WARNING, ERROR or CRITICAL (wins over -v)",
        **default,
    )
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        help="text (a line per record, with its time; the default) or json (one object per line)",
        **default,
    )
