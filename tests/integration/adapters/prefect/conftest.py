"""The session's Prefect server (see ``prefect_server.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integration.adapters.prefect.prefect_server import running_prefect_server
from interlock.adapters.prefect import PrefectConnection


@pytest.fixture(scope="session")
def prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectConnection]:
    """A running Prefect server (auth string set), shared by the session's tests."""
    with running_prefect_server(tmp_path_factory.mktemp("prefect-home")) as connection:
        yield connection
