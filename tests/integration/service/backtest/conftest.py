"""The recorded service the backtest's tests share (see :mod:`harness.backtest_recording`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.backtest_recording import Recorded, record


@pytest.fixture(scope="package")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """A server that ran the scenario of :mod:`harness.backtest_recording`, still running."""
    with record(tmp_path_factory.mktemp("backtest")) as done:
        yield done
