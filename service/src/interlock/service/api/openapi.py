"""OpenAPI request bodies for handlers that read their raw body themselves.

``POST /api/events`` and ``POST /api/rules`` decode the raw bytes with msgspec (faster
and with more precise errors than Litestar's generic parsing), so Litestar cannot infer
their request body; :func:`raw_json_body` documents it through an ``operation_class``.
:data:`EVENT_SCHEMA` describes one event (native or CloudEvents 1.0) as the wire
contract has it, so that the schema documents ``POST /api/events`` and a client (or a
fuzzer) generated from it sends events the service can take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)

from interlock.sdk.limits import MAX_LABEL_VALUE_LENGTH, MAX_NAME_LENGTH

__all__ = ["CLOUDEVENT_SCHEMA", "EVENT_SCHEMA", "NATIVE_EVENT_SCHEMA", "raw_json_body"]

_STRING = OpenAPIType.STRING
_OBJECT = OpenAPIType.OBJECT

NATIVE_EVENT_SCHEMA: Final = Schema(
    type=_OBJECT,
    title="Event",
    description="An Interlock event; id and occurred default to a new UUID and now.",
    required=["event", "resource"],
    properties={
        "id": Schema(type=_STRING, format=OpenAPIFormat.UUID),
        "occurred": Schema(type=_STRING, format=OpenAPIFormat.DATE_TIME),
        "event": Schema(
            type=_STRING,
            pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){0,15}$",
            max_length=MAX_NAME_LENGTH,
            description="Dotted name, e.g. db.table.updated (at most 16 tokens).",
        ),
        "resource": Schema(
            type=_OBJECT,
            required=["id"],
            properties={"id": Schema(type=_STRING, min_length=1, max_length=256)},
            additional_properties=Schema(type=_STRING, max_length=MAX_LABEL_VALUE_LENGTH),
            description="What the event is about: id and string labels.",
        ),
        "related": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(
                type=_OBJECT,
                required=["id", "role"],
                properties={
                    "id": Schema(type=_STRING, min_length=1, max_length=256),
                    "role": Schema(type=_STRING, min_length=1, max_length=256),
                },
                additional_properties=Schema(type=_STRING, max_length=MAX_LABEL_VALUE_LENGTH),
            ),
            max_items=64,
        ),
        "payload": Schema(type=_OBJECT, description="Anything else (nested at most 32 deep)."),
        "source": Schema(type=_STRING, max_length=255, description="Who published it."),
    },
    additional_properties=False,
)
"""A native event (see the wire contract in the README)."""

CLOUDEVENT_SCHEMA: Final = Schema(
    type=_OBJECT,
    title="CloudEvent",
    description="A CloudEvents 1.0 structured event: type -> event, subject -> resource.id, "
    "data -> payload.",
    required=["specversion", "id", "source", "type"],
    properties={
        "specversion": Schema(type=_STRING, const="1.0"),
        "id": Schema(type=_STRING, min_length=1, max_length=256),
        "source": Schema(type=_STRING, min_length=1, max_length=255),
        "type": Schema(type=_STRING, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){0,15}$"),
        "subject": Schema(type=_STRING, max_length=256),
        "time": Schema(type=_STRING, format=OpenAPIFormat.DATE_TIME),
        "data": Schema(type=_OBJECT),
    },
)
"""A CloudEvents 1.0 structured event."""

EVENT_SCHEMA: Final = Schema(any_of=[NATIVE_EVENT_SCHEMA, CLOUDEVENT_SCHEMA])
"""One event, in either form."""


def raw_json_body(
    description: str,
    media_types: tuple[str, ...] = ("application/json",),
    item: Schema | None = None,
) -> type[Operation]:
    """An ``operation_class`` documenting a JSON request body: one ``item`` or an array.

    ``item`` defaults to any JSON object.
    """
    one = item if item is not None else Schema(type=_OBJECT)
    schema = Schema(
        one_of=[one, Schema(type=OpenAPIType.ARRAY, items=one, min_items=1)],
        description=description,
    )
    body = RequestBody(
        content={media: OpenAPIMediaType(schema=schema) for media in media_types},
        description=description,
        required=True,
    )

    @dataclass
    class _Operation(Operation):
        def __post_init__(self, *args: Any) -> None:
            if self.request_body is None:
                self.request_body = body

    return _Operation
