"""Fixtures of the dispatcher tests: the store on SQLite and PostgreSQL, NATS streams."""

from __future__ import annotations

import pytest

from harness.nats import init_streams


@pytest.fixture
def streams(nats_url: str) -> str:
    """The URL of a NATS server with Interlock's streams."""
    init_streams(nats_url)
    return nats_url
