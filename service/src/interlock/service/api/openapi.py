"""The OpenAPI document's own parts: request bodies read raw, rule schemas, security.

``POST /api/events`` and ``POST /api/rules`` decode the raw bytes with msgspec (faster
and with more precise errors than Litestar's generic parsing), so Litestar cannot infer
their request body; :func:`raw_json_body` documents it through an ``operation_class``.
:data:`EVENT_SCHEMA` describes one event (native or CloudEvents 1.0) as the wire
contract has it, so that the schema documents ``POST /api/events`` and a client (or a
fuzzer) generated from it sends events the service can take. :data:`RULES_BODY_SCHEMA`
describes what ``POST /api/rules`` takes, from the rule model itself
(:class:`~interlock.rules.rule.Rule`, through msgspec's JSON Schema): its parts are
components (``rules.Rule``, ``rules.Notify``, ...) that :func:`add_rule_components` adds
to the app's document (Litestar writes the components it finds in handlers' signatures
over any given in its configuration, so they are added once it has).

:func:`openapi_components` declares the API key (``Authorization: Bearer TOKEN``) as the
``apiKey`` security scheme, and :data:`SECURITY` says every operation takes it or nothing
(a local API with no key, health, metrics).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.openapi.spec import (
    Components,
    Discriminator,
    OpenAPI,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)

from interlock.rules.rule import Rule
from interlock.sdk.limits import MAX_LABEL_VALUE_LENGTH, MAX_NAME_LENGTH

__all__ = [
    "API_KEY_SCHEME",
    "CLOUDEVENT_SCHEMA",
    "EVENT_SCHEMA",
    "NATIVE_EVENT_SCHEMA",
    "RULES_BODY_SCHEMA",
    "SECURITY",
    "add_rule_components",
    "from_json_schema",
    "openapi_components",
    "raw_json_body",
]

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
    *,
    schema: Schema | None = None,
) -> type[Operation]:
    """An ``operation_class`` documenting a JSON request body: one ``item`` or an array.

    ``item`` defaults to any JSON object; ``schema`` replaces the whole body's schema.
    """
    if schema is None:
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


# -- rules ------------------------------------------------------------------------------

_COMPONENT_PREFIX = "rules."
_RULE_SCHEMA, _RULE_PARTS = msgspec.json.schema_components(
    [Rule], ref_template=f"#/components/schemas/{_COMPONENT_PREFIX}{{name}}"
)
_FIELDS = {  # JSON Schema keyword -> litestar Schema field, where they differ
    "anyOf": "any_of",
    "oneOf": "one_of",
    "allOf": "all_of",
    "additionalProperties": "additional_properties",
    "minLength": "min_length",
    "maxLength": "max_length",
    "minItems": "min_items",
    "maxItems": "max_items",
    "uniqueItems": "unique_items",
    "exclusiveMinimum": "exclusive_minimum",
    "exclusiveMaximum": "exclusive_maximum",
    "multipleOf": "multiple_of",
    "prefixItems": "prefix_items",
    "minProperties": "min_properties",
    "maxProperties": "max_properties",
}


def from_json_schema(document: Mapping[str, Any]) -> Schema | Reference:
    """A JSON Schema object (msgspec's) as Litestar's OpenAPI 3.1 objects."""
    if "$ref" in document:
        return Reference(ref=document["$ref"])
    values: dict[str, Any] = {}
    for key, value in document.items():
        field = _FIELDS.get(key, key)
        if key == "type":
            values[field] = (
                [OpenAPIType(kind) for kind in value]
                if isinstance(value, list)
                else OpenAPIType(value)
            )
        elif key == "properties":
            values[field] = {name: from_json_schema(part) for name, part in value.items()}
        elif key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            values[field] = [from_json_schema(part) for part in value]
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            values[field] = from_json_schema(value)
        elif key == "discriminator":
            values[field] = Discriminator(
                property_name=value["propertyName"], mapping=value.get("mapping")
            )
        elif key == "format":
            values[field] = OpenAPIFormat(value)
        else:
            values[field] = value
    return Schema(**values)


RULE_SCHEMA: Final = from_json_schema(_RULE_SCHEMA[0])
"""One rule, in its stored JSON form (a reference to the ``rules.Rule`` component)."""

RULES_BODY_SCHEMA: Final = Schema(
    one_of=[
        Schema(
            type=_OBJECT,
            title="RuleSet",
            required=["rules"],
            properties={
                "schema_version": Schema(type=OpenAPIType.INTEGER, const=1),
                "rules": Schema(type=OpenAPIType.ARRAY, items=RULE_SCHEMA),
            },
            additional_properties=False,
        ),
        Schema(type=OpenAPIType.ARRAY, items=RULE_SCHEMA),
        RULE_SCHEMA,
    ],
    description='Rules in their stored JSON form: {"schema_version": 1, "rules": [...]}, a '
    "list of rules, or one rule (as `GET /api/rules/{name}` shows under `rule`); "
    "`interlock rules apply` sends what the Python DSL builds.",
)
"""What ``POST /api/rules`` and ``POST /api/rules/check`` take."""

# -- security ---------------------------------------------------------------------------

API_KEY_SCHEME: Final = "apiKey"
SECURITY: Final[list[SecurityRequirement]] = [{API_KEY_SCHEME: []}, {}]
"""Every operation takes an API key, or none where none is needed (see the scheme)."""


class _WithRuleComponents(OpenAPIPlugin):
    """Litestar's OpenAPI plugin, adding the rule model's components when it builds."""

    __slots__ = ()

    def _build_openapi(self) -> OpenAPI:
        openapi = super()._build_openapi()
        schemas = openapi.components.schemas
        for name, part in _RULE_PARTS.items():
            schemas[f"{_COMPONENT_PREFIX}{name}"] = _as_schema(part)
        return openapi


def add_rule_components(app: Litestar) -> None:
    """Add the rule model's components to ``app``'s OpenAPI document when it is built.

    The document is built at its first request (``/schema``), not at start: building
    it, about 100 operations and the rule model's parts, took a fifth of a second of
    every start. Litestar creates its OpenAPI plugin itself, so that instance becomes
    the subclass that adds the components (the same slots, one method more).
    """
    plugin = app.plugins.get(OpenAPIPlugin)
    plugin.__class__ = _WithRuleComponents


def openapi_components() -> Components:
    """The components the configuration declares: the API key's security scheme."""
    return Components(
        security_schemes={
            API_KEY_SCHEME: SecurityScheme(
                type="http",
                scheme="bearer",
                description="An API key (`interlock keys create NAME --scope SCOPE`) sent as "
                "`Authorization: Bearer TOKEN`; scopes read, publish, write, admin. Bound to "
                "127.0.0.1 with no key in the database, the API needs none; /api/health and "
                "/metrics never do.",
            )
        },
    )


def _as_schema(part: Mapping[str, Any]) -> Schema:
    schema = from_json_schema(part)
    assert isinstance(schema, Schema)  # a component is a schema, not a reference
    return schema
