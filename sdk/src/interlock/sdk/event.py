"""The event: Interlock's unit of information, exactly as the wire contract defines it.

An event is a JSON object with the fields ``id``, ``occurred``, ``event``, ``resource``,
``related``, ``payload`` and ``source`` (see ``DESIGN.md``, "Wire contract"). This module
owns the :class:`Event` value object and the rules a valid event obeys; encoding and
decoding live in :mod:`interlock.sdk.codec`.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any

import msgspec

from interlock.sdk.errors import EventValidationError
from interlock.sdk.limits import (
    MAX_LABEL_KEY_LENGTH,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
    MAX_NAME_LENGTH,
    MAX_RELATED,
    MAX_SOURCE_LENGTH,
)
from interlock.sdk.subjects import subject_for

__all__ = ["MAX_EVENT_NAME_TOKENS", "Event", "check_event_name", "utc_now"]

MAX_EVENT_NAME_TOKENS = 16
"""An event name has at most this many dot-separated tokens."""

_EVENT_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+){0,15}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_VALID_NAMES: set[str] = set()
"""Names found valid: a process sees few distinct ones, and each event checks its own."""
_MAX_REMEMBERED_NAMES = 10_000

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def check_event_name(name: object, field: str = "event") -> str:
    """Return ``name`` if it is a valid event name, else raise :class:`EventValidationError`.

    A valid name is 1 to 16 tokens of ``[A-Za-z0-9_-]`` joined by dots, e.g.
    ``airflow.dag_run.succeeded``. The error says which token is wrong and why.
    """
    if type(name) is str and name in _VALID_NAMES:
        return name
    if not isinstance(name, str):
        raise EventValidationError(field, f"must be a string, not {type(name).__name__}")
    if len(name) > MAX_NAME_LENGTH:
        raise EventValidationError(
            field, f"is {len(name):,} characters long; at most {MAX_NAME_LENGTH} are allowed"
        )
    if _EVENT_NAME.fullmatch(name):
        if len(_VALID_NAMES) < _MAX_REMEMBERED_NAMES:
            _VALID_NAMES.add(str(name))
        return name
    if not name:
        raise EventValidationError(field, "is required (a dotted name like 's3.object.created')")
    tokens = name.split(".")
    for index, token in enumerate(tokens):
        if not token:
            raise EventValidationError(
                field, f"name {name!r} has an empty token (token {index + 1} of {len(tokens)})"
            )
        if not _TOKEN.fullmatch(token):
            bad = next(ch for ch in token if not _TOKEN.fullmatch(ch))
            raise EventValidationError(
                field,
                f"name {name!r} has the character {bad!r} in token {token!r}; "
                "tokens hold only letters, digits, '_' and '-'",
            )
    raise EventValidationError(
        field,
        f"name {name!r} has {len(tokens)} tokens; at most {MAX_EVENT_NAME_TOKENS} are allowed",
    )


def _check_string_map(value: object, field: str, required: tuple[str, ...]) -> None:
    """Check a resource (or related resource): string keys and values within the limits.

    The common case, plain strings within every limit, is one pass with no messages
    built; anything else takes :func:`_explain_string_map`, which names what is wrong.
    """
    if type(value) is dict and len(value) <= MAX_LABELS:
        for key, item in value.items():
            if not (
                type(key) is str
                and type(item) is str
                and 0 < len(key) <= MAX_LABEL_KEY_LENGTH
                and len(item) <= MAX_LABEL_VALUE_LENGTH
            ):
                break
        else:
            for key in required:
                if not value.get(key):
                    raise EventValidationError(f"{field}.{key}", "is required")
            return
    _explain_string_map(value, field, required)


def _explain_string_map(value: object, field: str, required: tuple[str, ...]) -> None:
    """Raise the error naming what is wrong with a string map (the slow, exact path)."""
    if not isinstance(value, dict):
        raise EventValidationError(field, f"must be an object, not {type(value).__name__}")
    if len(value) > MAX_LABELS:
        raise EventValidationError(
            field, f"has {len(value)} entries; at most {MAX_LABELS} are allowed"
        )
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise EventValidationError(field, f"has an invalid key {key!r}")
        if len(key) > MAX_LABEL_KEY_LENGTH:
            raise EventValidationError(
                field,
                f"has a key of {len(key):,} characters; at most {MAX_LABEL_KEY_LENGTH} are allowed",
            )
        if not isinstance(item, str):
            raise EventValidationError(
                f"{field}.{key}", f"must be a string, not {type(item).__name__}"
            )
        if len(item) > MAX_LABEL_VALUE_LENGTH:
            raise EventValidationError(
                f"{field}.{key}",
                f"is {len(item):,} characters long; at most {MAX_LABEL_VALUE_LENGTH:,} are allowed",
            )
    for key in required:
        if not value.get(key):
            raise EventValidationError(f"{field}.{key}", "is required")


class Event(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One thing that happened, in the shape every Interlock component understands.

    Build one with keywords; ``id``, ``occurred`` and ``source`` have defaults::

        Event(event="db.table.updated", resource={"id": "warehouse.sales", "schema": "dw"})

    Construction validates the contract and raises :class:`EventValidationError` naming
    the field, e.g. ``resource.id is required``.
    """

    id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)
    """Unique id; the idempotency key end to end (a retried publish is stored once)."""
    occurred: AwareDatetime = msgspec.field(default_factory=utc_now)
    """When it happened at the source, with a UTC offset."""
    event: str
    """Dotted name, e.g. ``airflow.dag_run.succeeded``."""
    resource: dict[str, str]
    """The thing it is about: ``id`` (required) plus labels."""
    related: list[dict[str, str]] = msgspec.field(default_factory=list)
    """Other resources involved, each with ``id`` and ``role``."""
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    """Anything else, as JSON-compatible values."""
    source: str = ""
    """Who published it (``adapter.s3``, ``sdk``, ...). Empty means "not set yet": a
    :class:`~interlock.sdk.Publisher` fills in its configured source."""

    def __post_init__(self) -> None:
        check_event_name(self.event)
        if not isinstance(self.id, uuid.UUID):
            raise EventValidationError("id", f"must be a UUID, not {type(self.id).__name__}")
        if not isinstance(self.occurred, datetime):
            raise EventValidationError(
                "occurred", f"must be a datetime, not {type(self.occurred).__name__}"
            )
        tzinfo = self.occurred.tzinfo
        if type(tzinfo) is not timezone and (tzinfo is None or self.occurred.utcoffset() is None):
            raise EventValidationError(
                "occurred", "must carry a UTC offset (an aware datetime, e.g. 2026-01-31T09:00Z)"
            )
        _check_string_map(self.resource, "resource", ("id",))
        if not isinstance(self.related, list):
            raise EventValidationError(
                "related", f"must be a list, not {type(self.related).__name__}"
            )
        if len(self.related) > MAX_RELATED:
            raise EventValidationError(
                "related", f"has {len(self.related)} entries; at most {MAX_RELATED} are allowed"
            )
        for index, item in enumerate(self.related):
            _check_string_map(item, f"related[{index}]", ("id", "role"))
        if not isinstance(self.payload, dict):
            raise EventValidationError(
                "payload", f"must be an object, not {type(self.payload).__name__}"
            )
        if not isinstance(self.source, str):
            raise EventValidationError(
                "source", f"must be a string, not {type(self.source).__name__}"
            )
        if len(self.source) > MAX_SOURCE_LENGTH:
            raise EventValidationError(
                "source",
                f"is {len(self.source):,} characters long; at most {MAX_SOURCE_LENGTH} are allowed",
            )

    @property
    def resource_id(self) -> str:
        """The id of the resource this event is about."""
        return self.resource["id"]

    @property
    def subject(self) -> str:
        """The NATS subject this event is published on: ``interlock.events.<event>``."""
        return subject_for(self.event)
