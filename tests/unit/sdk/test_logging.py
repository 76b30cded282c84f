"""``interlock``'s logging: times on every line, JSON on demand, levels from the flags."""

from __future__ import annotations

import argparse
import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from interlock.sdk.cli._logging import add_logging_arguments, configure_logging, level_from


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_text_lines_start_with_their_time() -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", out)
    logging.getLogger("interlock.test").info("rule %s fired", "sales")
    logging.getLogger("interlock.test").debug("not shown")
    [line] = out.getvalue().splitlines()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d INFO interlock.test: rule sales fired",
        line,
    ), line


def test_json_lines_carry_the_structured_fields() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", out)
    logger = logging.getLogger("interlock.test")
    logger.warning("adapter %s failed", "landing", extra={"adapter": "landing"})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("poll failed")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["time"].endswith("Z")
    assert {k: first[k] for k in ("level", "logger", "message", "adapter")} == {
        "level": "WARNING",
        "logger": "interlock.test",
        "message": "adapter landing failed",
        "adapter": "landing",
    }
    assert "ValueError: boom" in second["exception"]


@pytest.mark.parametrize(
    ("argv", "default", "level"),
    [
        ([], "WARNING", "WARNING"),
        (["-v"], "WARNING", "INFO"),
        (["-vv"], "WARNING", "DEBUG"),
        ([], "INFO", "INFO"),
        (["-v"], "INFO", "DEBUG"),
        (["-v", "--log-level", "error"], "INFO", "ERROR"),
    ],
)
def test_the_level_comes_from_the_flags_then_the_command(
    argv: list[str], default: str, level: str
) -> None:
    parser = argparse.ArgumentParser()
    add_logging_arguments(parser)
    assert level_from(parser.parse_args(argv), default) == level


def test_routine_library_logs_wait_for_debug() -> None:
    configure_logging("INFO", "text", io.StringIO())
    assert not logging.getLogger("apscheduler.scheduler").isEnabledFor(logging.INFO)
    configure_logging("DEBUG", "text", io.StringIO())
    assert logging.getLogger("apscheduler.scheduler").isEnabledFor(logging.DEBUG)
