"""``POST /api/events``: events into JetStream over HTTP.

The answer (202) comes only once every event of the request is either acknowledged by
JetStream (``stored``) or written to the service's on-disk spool because NATS is down
(``spooled``; sent as soon as NATS is back). A batch with one invalid event is rejected
whole with 400 and nothing is published (see :mod:`.ingest`); a body over the size
limit is refused with 413, one of another media type with 415 (:mod:`.bodies`).
Publishing needs the ``publish`` scope (``write`` and ``admin`` include it).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Final

import msgspec
from litestar import Controller, Request, Response, post
from litestar.status_codes import HTTP_202_ACCEPTED

from interlock.sdk.errors import EventValidationError, SpoolError
from interlock.service.api.auth import require_publish
from interlock.service.api.bodies import BODY_MEDIA_TYPES_OPT, CHECKS_JSON_ITSELF_OPT, JSON
from interlock.service.api.deps import ServicesDep
from interlock.service.api.errors import TOO_LARGE_HINT_OPT, problem
from interlock.service.api.ingest import CLOUDEVENTS, CLOUDEVENTS_BATCH, IngestError, decode_body
from interlock.service.api.openapi import EVENT_SCHEMA, raw_json_body

__all__ = ["EventController", "EventsAccepted"]

logger = logging.getLogger(__name__)

MEDIA_TYPES: Final = (JSON, CLOUDEVENTS, CLOUDEVENTS_BATCH)
"""The media types ``POST /api/events`` takes."""


class EventsAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """What became of the posted events."""

    accepted: int
    """How many events the request held; all were taken."""
    ids: list[uuid.UUID]
    """Their ids, in order (generated ones included)."""
    stored: int
    """Acknowledged by JetStream before answering."""
    spooled: int
    """Written to the spool (NATS unreachable); published once it is back."""


_encode = msgspec.json.Encoder().encode
"""The answer's encoder: the route hands Litestar bytes, which it sends as they are."""


class EventController(Controller):
    """Event ingestion."""

    tags = ["events"]  # noqa: RUF012 - Litestar's declared attribute

    @post(
        "/api/events",
        guards=[require_publish],
        status_code=HTTP_202_ACCEPTED,
        summary="Publish events (one, a batch, or CloudEvents)",
        operation_class=raw_json_body(
            "One Interlock event (object) or a batch (array): fields id, occurred, event, "
            "resource (with id), related, payload, source (default 'api'); or CloudEvents 1.0 "
            "structured events.",
            MEDIA_TYPES,
            EVENT_SCHEMA,
        ),
        opt={
            BODY_MEDIA_TYPES_OPT: MEDIA_TYPES,
            CHECKS_JSON_ITSELF_OPT: True,  # the SDK's decoder applies the wire contract
            TOO_LARGE_HINT_OPT: "send smaller batches (split the array of events into "
            "several requests)",
        },
    )
    async def publish(
        self, request: Request[Any, Any, Any], services: ServicesDep
    ) -> Response[Any]:
        """Publish one event (a JSON object) or a batch (a JSON array) to JetStream.

        Native Interlock events and CloudEvents 1.0 structured events are accepted, mixed
        if need be (``application/cloudevents+json`` / ``application/cloudevents-batch+json``
        require CloudEvents). Events without ``source`` get ``"api"``. All or nothing: a
        batch holding one invalid event is refused with 400 naming its index and field,
        and none of it is published. Answers 202 ``{"accepted", "ids", "stored",
        "spooled"}`` once every event is acknowledged by JetStream or spooled; 413 when
        the body is over the limit (1 MiB by default); 415 for a body that is not one of
        the JSON media types above; 422 with ``refused`` (index, id,
        reason of each) when JetStream refused events for good (the stream's limits), the
        others having gone on.
        """
        body = await request.body()  # over the limit: 413 (see errors.py)
        try:
            events = decode_body(body, request.headers.get("content-type", ""))
        except IngestError as exc:
            return problem(400, str(exc), index=exc.index, field=exc.field)
        except Exception as exc:  # the decoders' own failure: still the body's fault
            logger.warning("POST /api/events: undecodable body", exc_info=exc)
            return problem(400, f"the body cannot be read as events ({type(exc).__name__}: {exc})")
        try:
            result = await services.publisher.publish_many(events)
        except EventValidationError as exc:  # what only the encoded event shows (its size)
            batch = body.lstrip()[:1] == b"["
            index = exc.index if batch else None
            detail = f"{exc.field} {exc.reason}" if exc.field else exc.reason
            detail = f"event [{index}]: {detail}" if index is not None else detail
            return problem(400, detail, index=index, field=exc.field)
        except SpoolError as exc:
            return problem(
                503,
                f"NATS is unreachable and the spool cannot take the events ({exc}); events "
                "before them may have been published: retry the batch with the same ids "
                "(JetStream drops duplicates)",
            )
        services.metrics.events_received.inc(len(events) - len(result.refused))
        if result.refused:
            first = result.refused[0]
            return problem(
                422,
                f"JetStream refused {len(result.refused)} of the {len(events)} events for good "
                f"(event {first.index}: {first.reason}); the others were accepted "
                f"({result.stored} stored, {result.spooled} spooled). The refused ones are "
                "kept in the service's refused.jsonl; sending them again will not help",
                refused=[msgspec.structs.asdict(refusal) for refusal in result.refused],
                stored=result.stored,
                spooled=result.spooled,
            )
        accepted = EventsAccepted(
            accepted=len(events),
            ids=[event.id for event in events],
            stored=result.stored,
            spooled=result.spooled,
        )
        return Response(_encode(accepted), status_code=HTTP_202_ACCEPTED, media_type=JSON)
