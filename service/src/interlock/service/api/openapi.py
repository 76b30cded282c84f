"""OpenAPI request bodies for handlers that read their raw body themselves.

``POST /api/events`` and ``POST /api/rules`` decode the raw bytes with msgspec (faster
and with more precise errors than Litestar's generic parsing), so Litestar cannot infer
their request body; :func:`raw_json_body` documents it through an ``operation_class``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

__all__ = ["raw_json_body"]


def raw_json_body(
    description: str, media_types: tuple[str, ...] = ("application/json",)
) -> type[Operation]:
    """An ``operation_class`` documenting a JSON object-or-array request body."""
    schema = Schema(
        one_of=[
            Schema(type=OpenAPIType.OBJECT),
            Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT)),
        ],
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
