"""Fixtures of the deployment tests: services over a real store (SQLite and PostgreSQL)
with a publisher on a real NATS JetStream server; workers stopped after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness.nats import nats_client
from integration.service.deployments.deploy_fixtures import Workers, open_services
from interlock.sdk.streams import ensure_streams
from interlock.service.context import Services


@pytest.fixture
async def services(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    async with nats_client(nats_url) as client:
        await ensure_streams(client.jetstream())
    async with open_services(database_url, nats_url, tmp_path / "data") as made:
        yield made


@pytest.fixture
async def workers(services: Services) -> AsyncIterator[Workers]:
    made = Workers(services)
    try:
        yield made
    finally:
        await made.stop_all()
