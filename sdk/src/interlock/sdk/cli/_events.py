"""``interlock events``: emit an event from a shell, tail the event stream, set up streams.

The NATS servers come from ``--nats-url``, else ``INTERLOCK_NATS_URL``, else the
embedded nats-server of an ``interlock server`` running on the data directory
(``INTERLOCK_DATA_DIR``, default ``.interlock``: see :mod:`interlock.sdk.local_server`),
else ``nats://127.0.0.1:4222``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import uuid
from datetime import timezone
from pathlib import Path
from typing import Any

import msgspec
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from interlock.sdk.codec import decode_event, encode_event
from interlock.sdk.compat import fromisoformat
from interlock.sdk.config import PublisherConfig
from interlock.sdk.connection import connect
from interlock.sdk.durations import parse_duration
from interlock.sdk.errors import ConfigurationError, EventValidationError
from interlock.sdk.event import Event, utc_now
from interlock.sdk.local_server import data_dir_from, find_local_server
from interlock.sdk.publisher import REFUSED_FILE, Publisher
from interlock.sdk.streams import LEASE_BUCKET, StreamLimits, ensure_lease_bucket, ensure_streams
from interlock.sdk.subjects import EVENTS_STREAM, subject_filter

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(groups: Any) -> None:
    """Add the ``events`` command group."""
    events = groups.add_parser("events", help="emit and tail events")
    commands = events.add_subparsers(title="commands", metavar="COMMAND", required=True)

    emit = commands.add_parser(
        "emit",
        help="publish one event",
        description="Publish one event. If NATS is unreachable the event is spooled on disk "
        "and sent by the next producer that runs; the exit status is still 0.",
    )
    emit.add_argument("event", help="dotted event name, e.g. db.table.updated")
    emit.add_argument("--resource-id", required=True, help="the resource it is about")
    emit.add_argument("--label", action="append", default=[], metavar="K=V", help="a label")
    emit.add_argument(
        "--related", action="append", default=[], metavar="ROLE=ID", help="a related resource"
    )
    emit.add_argument("--payload", default="{}", metavar="JSON", help="a JSON object")
    emit.add_argument("--id", type=uuid.UUID, help="event id (default: a new UUID)")
    emit.add_argument("--occurred", help="RFC 3339 time it happened (default: now)")
    emit.add_argument("--source", help="who publishes it (default: $INTERLOCK_SOURCE or sdk)")
    _connection_arguments(emit)
    emit.add_argument("--spool-dir", type=Path, help="spool directory (default: see docs)")
    emit.add_argument(
        "--timeout", type=float, help="seconds to wait for NATS before spooling (default 2)"
    )
    emit.set_defaults(handler=_emit)

    tail = commands.add_parser("tail", help="print events as they arrive, one JSON object per line")
    tail.add_argument("pattern", nargs="?", default=">", help="event name pattern: s3.object.*")
    _connection_arguments(tail)
    start = tail.add_mutually_exclusive_group()
    start.add_argument("--all", action="store_true", help="start at the oldest stored event")
    start.add_argument("--since", help="start at a time: a duration ago (1h) or RFC 3339")
    tail.add_argument("--count", type=int, help="exit after this many events")
    tail.add_argument("--idle-exit", type=float, metavar="S", help="exit after S idle seconds")
    tail.set_defaults(handler=_tail)

    init = commands.add_parser(
        "init-streams", help="create or update the INTERLOCK_EVENTS and INTERLOCK_DEAD streams"
    )
    _connection_arguments(init)
    init.add_argument("--max-age", default="7d", help="keep events this long (default 7d)")
    init.add_argument("--max-bytes", type=int, help="keep at most this many bytes")
    init.add_argument("--duplicate-window", default="10m", help="de-duplication window")
    init.add_argument(
        "--replicas",
        type=int,
        help="replicas of each stream and of the lease bucket (3 on a 3-node cluster); "
        "creates the lease bucket of interlock server replicas too (default: streams keep "
        "their replicas, new ones get 1, no lease bucket)",
    )
    init.add_argument(
        "--lease-bucket", default=LEASE_BUCKET, help=f"with --replicas (default {LEASE_BUCKET})"
    )
    init.add_argument(
        "--lease-ttl",
        default="10s",
        help="the lease bucket's TTL when it is created (default 10s, as replicas.lease_ttl)",
    )
    init.set_defaults(handler=_init_streams)


def _connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nats-url",
        help="server URL(s), comma-separated (default: $INTERLOCK_NATS_URL, else the "
        "embedded NATS of a server running on ./.interlock or $INTERLOCK_DATA_DIR, else "
        "nats://127.0.0.1:4222)",
    )


def _config(args: argparse.Namespace) -> PublisherConfig:
    overrides: dict[str, object] = {}
    environ = dict(os.environ)
    if args.nats_url:
        environ["INTERLOCK_NATS_URL"] = args.nats_url
    elif not environ.get("INTERLOCK_NATS_URL"):
        local = find_local_server(environ)
        if local is not None and local.nats_url:
            logger.info("using the NATS of the server running on %s", data_dir_from(environ))
            environ["INTERLOCK_NATS_URL"] = local.nats_url
    for name in ("source", "spool_dir", "timeout"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return PublisherConfig.from_env(environ, **overrides)


def _pairs(values: list[str], option: str) -> dict[str, str]:
    result = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key:
            raise ConfigurationError(option, f"{value!r} is not KEY=VALUE")
        result[key] = item
    return result


async def _emit(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload)
    except json.JSONDecodeError as exc:
        raise EventValidationError("payload", f"is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise EventValidationError("payload", "must be a JSON object")
    occurred = utc_now()
    if args.occurred:
        try:
            occurred = fromisoformat(args.occurred)
        except ValueError as exc:
            raise EventValidationError("occurred", "is not an RFC 3339 timestamp") from exc
    config = _config(args)
    related = [
        {"id": item, "role": role} for role, item in _pairs(args.related, "--related").items()
    ]
    event = Event(
        id=args.id or uuid.uuid4(),
        occurred=occurred,
        event=args.event,
        resource={**_pairs(args.label, "--label"), "id": args.resource_id},
        related=related,
        payload=payload,
        source=config.source,
    )
    async with Publisher(config) as publisher:
        result = await publisher.publish(event)
    if result.refused:
        print(
            f"interlock: JetStream refused the event for good ({result.refused[0].reason}); "
            f"it is kept in {config.spool_dir / REFUSED_FILE}",
            file=sys.stderr,
        )
        return 1
    sys.stdout.buffer.write(encode_event(event) + b"\n")
    if result.spooled:
        print(
            f"interlock: NATS did not take the event; it is spooled in {config.spool_dir} "
            "and will be sent by the next producer that reaches NATS",
            file=sys.stderr,
        )
    return 0


def _start(args: argparse.Namespace) -> ConsumerConfig:
    if args.all:
        return ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    if args.since:
        try:
            start = utc_now() - parse_duration(args.since)
        except ValueError:
            try:
                start = fromisoformat(args.since)
            except ValueError as exc:
                raise ConfigurationError(
                    "--since", f"{args.since!r} is neither a duration (1h) nor a timestamp"
                ) from exc
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
        return ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=start)
    return ConsumerConfig(deliver_policy=DeliverPolicy.NEW)


async def _tail(args: argparse.Namespace) -> int:
    config = _config(args)
    nc = await connect(config.nats)
    try:
        js = nc.jetstream()
        subscription = await js.subscribe(
            subject_filter(args.pattern),
            stream=EVENTS_STREAM,
            ordered_consumer=True,
            config=_start(args),
        )
        seen = 0
        out = sys.stdout.buffer
        while args.count is None or seen < args.count:
            try:
                message = await subscription.next_msg(timeout=args.idle_exit or 3600)
            except asyncio.TimeoutError:
                if args.idle_exit:
                    break
                continue
            try:
                event = decode_event(message.data)
            except EventValidationError as exc:
                print(
                    f"interlock: skipping an invalid message on {message.subject}: {exc}",
                    file=sys.stderr,
                )
                continue
            out.write(encode_event(event) + b"\n")
            out.flush()
            seen += 1
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
    finally:
        await nc.close()
    return 0


async def _init_streams(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.replicas is not None and not 1 <= args.replicas <= 5:
        raise ConfigurationError("replicas", f"{args.replicas} is not between 1 and 5")
    try:
        lease_ttl = parse_duration(args.lease_ttl)
        limits = StreamLimits(
            max_age=parse_duration(args.max_age),
            max_bytes=args.max_bytes,
            duplicate_window=parse_duration(args.duplicate_window),
            replicas=args.replicas or 1,
        )
    except ValueError as exc:
        raise ConfigurationError("streams", str(exc)) from exc
    nc = await connect(config.nats)
    try:
        js = nc.jetstream()
        if args.replicas is None:  # an existing stream keeps its replicas
            with contextlib.suppress(NotFoundError):
                current = await js.stream_info(EVENTS_STREAM)
                limits = msgspec.structs.replace(limits, replicas=current.config.num_replicas or 1)
        events, dead = await ensure_streams(js, limits)
        infos = [events, dead]
        if args.replicas is not None:
            infos.append(
                await ensure_lease_bucket(js, args.lease_bucket, lease_ttl, replicas=args.replicas)
            )
    finally:
        await nc.close()
    for info in infos:
        state: Any = info.state
        print(
            f"{info.config.name}: {state.messages} messages, {state.bytes} bytes, "
            f"{info.config.num_replicas or 1} replicas"
        )
    return 0
