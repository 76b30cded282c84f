"""Fixtures and helpers of the S3 adapter tests: moto's real HTTP server, JetStream reads.

``moto_url`` is one ``ThreadedMotoServer`` for the session (boto3 talks to it over HTTP,
as it would to AWS), reset before each test so buckets and queues never leak between
tests. A test module imports the fixtures (they are not in a ``conftest.py``, so the
other adapter suites in this folder keep their own)::

    from integration.adapters.s3_fixtures import moto_server, moto_url, s3, sqs
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from interlock.adapters.base import PollingAdapter
from interlock.adapters.checkpoints import FileCheckpointStore
from interlock.adapters.runner import AdapterRunner
from interlock.sdk import (
    NatsOptions,
    PublisherConfig,
    SyncPublisher,
)

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
"""moto accepts any keys; explicit ones keep the developer's own AWS settings out."""


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_url(moto_server: str) -> str:
    """The URL of moto's server, emptied of every bucket and queue."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    return moto_server


@contextmanager
def credentials_checked(moto_url: str) -> Iterator[None]:
    """Make moto check credentials (it accepts any by default) inside the block."""

    def set_count(count: str) -> None:
        request = urllib.request.Request(
            f"{moto_url}/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    set_count("0")  # requests without a known IAM user's keys are refused from now on
    try:
        yield
    finally:
        set_count("inf")


def client(service: str, moto_url: str) -> Any:
    return boto3.client(service, endpoint_url=moto_url, region_name=REGION, **CREDENTIALS)


@pytest.fixture
def s3(moto_url: str) -> Iterator[Any]:
    s3_client = client("s3", moto_url)
    yield s3_client
    s3_client.close()


@pytest.fixture
def sqs(moto_url: str) -> Iterator[Any]:
    sqs_client = client("sqs", moto_url)
    yield sqs_client
    sqs_client.close()


def s3_options(moto_url: str, **options: Any) -> dict[str, Any]:
    """An ``[adapters.NAME]`` section's options pointing at moto."""
    return {"endpoint_url": moto_url, "region": REGION, **CREDENTIALS, **options}


def put_objects(s3: Any, bucket: str, keys: Iterable[str], body: bytes = b"x") -> None:
    """Upload ``keys`` (8 at a time: moto answers each request in a few milliseconds)."""
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=body), keys))


def publisher_config(nats_url: str, tmp_path: Path, *, timeout: float = 2.0) -> PublisherConfig:
    options = NatsOptions(servers=(nats_url,), reconnect_wait=0.1, connect_timeout=0.5)
    return PublisherConfig(
        nats=options, spool_dir=tmp_path / "spool", source="adapter.test", timeout=timeout
    )


def run_until_caught_up(
    adapter: PollingAdapter, publisher: SyncPublisher, checkpoint_dir: Path
) -> AdapterRunner:
    """A runner for ``adapter`` polled until it has nothing more right away (``--once``)."""
    runner = AdapterRunner(adapter, publisher, FileCheckpointStore(checkpoint_dir))
    while runner.run_once():
        pass
    return runner
