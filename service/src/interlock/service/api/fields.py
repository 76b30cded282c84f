"""Field types of request bodies: checked on decoding, and shown in the OpenAPI schema.

Every value that reaches the database is bounded here (or by the store): names follow
the one rule of :mod:`interlock.service.store.names`, strings have a length limit that
fits their column, numbers a range. A request breaking one gets 400 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Final, TypeAlias

import msgspec

from interlock.service.store.deployments import MAX_CONCURRENCY_LIMIT, MAX_SCHEDULE_LENGTH
from interlock.service.store.names import MAX_NAME_LENGTH, NAME_HELP, NAME_PATTERN

__all__ = [
    "MAX_DESCRIPTION_LENGTH",
    "MAX_KEY_LENGTH",
    "MAX_TAGS",
    "ConcurrencyLimit",
    "Description",
    "IdempotencyKey",
    "Name",
    "Schedule",
    "Tag",
]

MAX_DESCRIPTION_LENGTH: Final = 10_000
MAX_KEY_LENGTH: Final = 200
"""Longest idempotency key (its column holds 200 characters)."""
MAX_TAGS: Final = 64

Name: TypeAlias = Annotated[
    str,
    msgspec.Meta(
        pattern=NAME_PATTERN,
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description=f"A name: {NAME_HELP}.",
        examples=["nightly-sales"],
    ),
]
Tag: TypeAlias = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_LENGTH)]
Description: TypeAlias = Annotated[str, msgspec.Meta(max_length=MAX_DESCRIPTION_LENGTH)]
Schedule: TypeAlias = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_SCHEDULE_LENGTH,
        description="A five-field cron expression (UTC), e.g. '0 6 * * 1-5'.",
    ),
]
IdempotencyKey: TypeAlias = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY_LENGTH)]
ConcurrencyLimit: TypeAlias = Annotated[
    int,
    msgspec.Meta(
        ge=1,
        le=MAX_CONCURRENCY_LIMIT,
        description=f"Runs at once over all workers, 1 to {MAX_CONCURRENCY_LIMIT:,}.",
    ),
]
