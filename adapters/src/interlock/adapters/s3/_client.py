"""Reaching AWS (or an S3-compatible store): connection options, boto3 clients, errors.

Both S3 adapters share the connection options (``endpoint_url``, ``region``, the
credentials, ``timeout``, ``max_attempts``) and one translation of botocore's errors
into the adapter contract:

- the service answered with a 5xx or a throttling code, or could not be reached
  → :class:`~interlock.adapters.base.SourceUnavailable` (the runner backs off);
- it answered with any other error code (``NoSuchBucket``, ``AccessDenied``,
  ``InvalidAccessKeyId``, ``AWS.SimpleQueueService.NonExistentQueue``), or no
  credentials were found → :class:`~interlock.adapters.base.SourceRefused`, whose
  reason carries the service's error code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import boto3
import msgspec
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from interlock.adapters.base import SourceRefused, SourceUnavailable
from interlock.adapters.option_reader import OptionReader

__all__ = ["Connection", "make_client", "source_errors"]

_RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "InternalError",
    }
)
DEFAULT_TIMEOUT = timedelta(seconds=10)
"""Connect and read timeout of one request."""
DEFAULT_MAX_ATTEMPTS = 3
"""Attempts per request (botocore's standard retry mode: backoff, throttling, 5xx)."""

_MESSAGE_LIMIT = 300
_SQS_REGION = re.compile(r"^https://(?:sqs\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.(?:queue\.)?amazonaws\.")


class Connection(msgspec.Struct, frozen=True, kw_only=True):
    """How to reach the service: endpoint, region, credentials, timeouts and retries."""

    endpoint_url: str | None = None
    region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    profile: str | None = None
    timeout: timedelta = DEFAULT_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    addressing_style: str = "auto"

    @classmethod
    def read(cls, options: OptionReader, *, s3: bool) -> Connection:
        """Read the connection options of an adapter section (``addressing_style``: S3 only)."""
        style = options.string("addressing_style", "auto") if s3 else "auto"
        if style not in {"auto", "path", "virtual"}:
            raise options.error("addressing_style", f"must be auto, path or virtual, not {style!r}")
        connection = cls(
            endpoint_url=options.string("endpoint_url"),
            region=options.string("region"),
            aws_access_key_id=options.string("aws_access_key_id"),
            aws_secret_access_key=options.string("aws_secret_access_key"),
            aws_session_token=options.string("aws_session_token"),
            profile=options.string("profile"),
            timeout=options.duration("timeout", DEFAULT_TIMEOUT),
            max_attempts=options.integer(
                "max_attempts", DEFAULT_MAX_ATTEMPTS, minimum=1, maximum=20
            ),
            addressing_style=style or "auto",
        )
        if connection.endpoint_url is not None and "://" not in connection.endpoint_url:
            raise options.error(
                "endpoint_url", f"{connection.endpoint_url!r} is not a URL (e.g. http://host:9000)"
            )
        if (connection.aws_access_key_id is None) != (connection.aws_secret_access_key is None):
            raise options.error(
                "aws_access_key_id", "and aws_secret_access_key go together: set both or neither"
            )
        if connection.profile is not None and connection.aws_access_key_id is not None:
            raise options.error(
                "profile", "and explicit keys exclude each other: set one or the other"
            )
        if connection.timeout <= timedelta(0):
            raise options.error("timeout", "must be positive")
        return connection


def _region_of_queue(queue_url: str) -> str | None:
    match = _SQS_REGION.match(queue_url)
    return match[1] if match else None


def make_client(
    service: str, connection: Connection, options: OptionReader, *, queue_url: str | None = None
) -> Any:
    """A boto3 client for ``service`` (``"s3"`` or ``"sqs"``).

    Creating a client does no network I/O: unreachable endpoints and bad credentials
    show on the first poll.

    Raises:
        AdapterConfigError: the profile does not exist, or no region could be found.
    """
    region = connection.region or (_region_of_queue(queue_url) if queue_url else None)
    try:
        session = boto3.session.Session(
            aws_access_key_id=connection.aws_access_key_id,
            aws_secret_access_key=connection.aws_secret_access_key,
            aws_session_token=connection.aws_session_token,
            region_name=region,
            profile_name=connection.profile,
        )
    except ProfileNotFound as exc:
        raise options.error("profile", f"{connection.profile!r} is not an AWS profile") from exc
    seconds = connection.timeout.total_seconds()
    config = Config(
        connect_timeout=seconds,
        read_timeout=seconds,
        retries={"max_attempts": connection.max_attempts, "mode": "standard"},
        s3={"addressing_style": connection.addressing_style},
    )
    try:
        return session.client(service, endpoint_url=connection.endpoint_url, config=config)
    except NoRegionError as exc:
        raise options.error(
            "region", "is required: none in the options, the queue URL or the AWS configuration"
        ) from exc


@contextmanager
def source_errors(adapter: str, action: str) -> Iterator[None]:
    """Translate botocore's errors raised inside the block into the adapter contract.

    ``action`` says what was being done (``listing s3://landing/exports/``); it starts
    the reason of the error raised.
    """
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code") or "Unknown"
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        message = " ".join(str(error.get("Message") or "no message").split())
        if len(message) > _MESSAGE_LIMIT:  # an unparsed error document, e.g. from a proxy
            message = message[: _MESSAGE_LIMIT - 3] + "..."
        reason = f"{action}: {code} (HTTP {status}: {message})"
        if status >= 500 or code in _RETRYABLE_CODES:
            raise SourceUnavailable(adapter, reason) from exc
        raise SourceRefused(adapter, reason) from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise SourceRefused(
            adapter,
            f"{action}: no usable AWS credentials ({exc}); set aws_access_key_id and "
            "aws_secret_access_key, a profile, or the standard AWS_* variables",
        ) from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        raise SourceUnavailable(adapter, f"{action}: {exc}") from exc
