"""Webhook actions per second: the dispatcher draining the outbox to a local receiver.

``--actions`` webhook actions (one per firing) are queued in a SQLite outbox, then one
:class:`~interlock.service.actions.dispatcher.Dispatcher` (the settings' defaults:
64 at once, claims of up to 256) sends them to an HTTP receiver running in a process
of its own, which counts requests by ``Idempotency-Key``. Reported: sustained actions
per second (from the dispatcher's start to the last outcome stored), how many were lost
(queued but never received, or not ``succeeded``) and how many received twice.
Every action also publishes its ``interlock.action.succeeded`` event to an embedded
nats-server, as in the service.

For scale, the same run measures the ceiling of the HTTP side alone: the webhook
executor called directly (no outbox, no events) with as many requests in flight as the
dispatcher runs, to the same receiver (``executor_only_requests_per_s``). The machine's
load average is recorded too: other work on the two cores lowers both figures.

    python tests/perf/bench_webhook.py [--actions 5000] [--out .bench]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the harness

from figures import write_figures

from harness.nats import nats_client
from harness.receiver_process import ReceiverProcess
from interlock.rules import Rule, on, webhook
from interlock.rules.clock import SystemClock
from interlock.rules.engine.engine import Engine
from interlock.rules.engine.firing import Firing, firing_id
from interlock.sdk import NatsOptions, Publisher, PublisherConfig, ensure_streams
from interlock.sdk.executors import ActionRequest
from interlock.service.actions.dispatcher import Dispatcher
from interlock.service.actions.registry import ServiceContext
from interlock.service.actions.webhook import WebhookExecutor
from interlock.service.context import Services
from interlock.service.embedded_nats import EmbeddedNatsServer
from interlock.service.metrics import Metrics
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.settings import load_settings
from interlock.service.store import Store, outbox_entries

QUEUE_BATCH = 500


async def queue(store: Store, rule: Rule, count: int) -> None:
    for start in range(0, count, QUEUE_BATCH):
        firings = []
        for n in range(start, min(count, start + QUEUE_BATCH)):
            events = [firing_id("bench", str(n), "event")]
            firings.append(
                Firing(
                    id=firing_id(rule.name, str(n), "fired", *events),
                    rule=rule.name,
                    key=str(n),
                    status="fired",
                    at=SystemClock().now(),
                    event_ids=events,
                )
            )
        entries = [e for f in firings for e in outbox_entries(f, rule.then)]
        await store.store_batch(firings, entries)


async def executor_only(services: Services, url: str, count: int) -> float:
    """Requests per second of the webhook executor alone, ``concurrency`` in flight."""
    executor = WebhookExecutor(ServiceContext.of(services))
    limit = asyncio.Semaphore(services.settings.actions.concurrency)
    action = {"action": "webhook", "url": url, "method": "POST", "headers": {}, "body": {"n": 1}}

    async def one(n: int) -> None:
        key = uuid.uuid5(uuid.NAMESPACE_URL, f"ceiling/{n}")
        request = ActionRequest(
            idempotency_key=key,
            firing_id=key,
            rule="ceiling",
            kind="webhook",
            action=action,
            attempt=1,
        )
        async with limit:
            await executor.execute(request)

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    elapsed = time.perf_counter() - started
    await executor.close()
    return count / elapsed


async def main(count: int, out: Path) -> dict[str, object]:
    with (
        tempfile.TemporaryDirectory() as scratch_name,
        EmbeddedNatsServer(store_dir=Path(scratch_name) / "js", port=0) as server,
    ):
        scratch = Path(scratch_name)
        async with nats_client(server.url) as client:
            await ensure_streams(client.jetstream())
        receiver = ReceiverProcess(scratch)
        receiver.start()
        port = receiver.port
        url = f"sqlite:///{scratch / 'interlock.db'}"
        key = Fernet.generate_key().decode()
        settings = load_settings(
            config_file=None, database_url=url, nats_url=server.url, secret_key=key
        )
        store = Store(url, secret_key=key)
        await store.migrate()
        publisher = Publisher(
            PublisherConfig(
                nats=NatsOptions(servers=(server.url,)), source="interlock", spool_dir=scratch
            )
        )
        await publisher.connect()
        clock = SystemClock()
        services = Services(
            settings=settings,
            store=store,
            publisher=publisher,
            clock=clock,
            metrics=Metrics(),
            rules=RuleHost(store, Engine(now=clock.now(), lateness_tolerance=timedelta(0))),
        )
        rule = Rule(
            name="bench-webhook",
            when=on("bench.happened"),
            then=[webhook(f"http://127.0.0.1:{port}/hook", body={"n": 1})],
        )
        ceiling = await executor_only(services, f"http://127.0.0.1:{port}/ceiling", count)
        queued_at = time.perf_counter()
        await queue(store, rule, count)
        queue_seconds = time.perf_counter() - queued_at

        dispatcher = Dispatcher(services)
        gc.collect()  # as `interlock server` does once it has started
        gc.freeze()
        started = time.perf_counter()
        task = asyncio.create_task(dispatcher.run())
        engine = sa.create_engine(url)
        done_query = sa.text("SELECT count(*) FROM outbox WHERE state IN ('succeeded', 'failed')")
        deadline = time.monotonic() + max(120.0, count / 50)
        while True:
            with engine.connect() as connection:
                done = connection.execute(done_query).scalar_one()
            if done >= count or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        await dispatcher.stop()
        await task
        with engine.connect() as connection:
            by_state = dict(
                connection.execute(
                    sa.text("SELECT state, count(*) FROM outbox GROUP BY state")
                ).all()
            )
            stored_keys = {
                str(row[0]).replace("-", "")
                for row in connection.execute(sa.text("SELECT idempotency_key FROM outbox"))
            }
        engine.dispose()
        await publisher.close()
        await store.close()
        keys = receiver.stop().keys

    received = {k.replace("-", "") for k in keys if k.replace("-", "") in stored_keys}
    lost = len(stored_keys - received) + (count - by_state.get("succeeded", 0))
    duplicated = sum(n - 1 for k, n in keys.items() if n > 1 and k.replace("-", "") in stored_keys)
    figures: dict[str, object] = {
        "benchmark": "webhook_actions",
        "actions": count,
        "database": "sqlite",
        "concurrency": settings.actions.concurrency,
        "queue_seconds": round(queue_seconds, 3),
        "seconds": round(elapsed, 3),
        "actions_per_s": round(count / elapsed),
        "lost": lost,
        "duplicated": duplicated,
        "states": by_state,
        "target_actions_per_s": 1000,
        "executor_only_requests_per_s": round(ceiling),
        "share_of_executor_ceiling": round(count / elapsed / ceiling, 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    write_figures(out / "webhook.json", figures)
    print(
        f"webhook actions: {figures['actions_per_s']:,}/s sustained ({count:,} actions in "
        f"{elapsed:.2f} s, SQLite outbox, {settings.actions.concurrency} at once); "
        f"lost {lost}, duplicated {duplicated}; the executor alone: {ceiling:,.0f} "
        f"requests/s; load average {os.getloadavg()[0]:.1f}"
    )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    arguments = parser.parse_args()
    from interlock.service.event_loop import run

    run(main(arguments.actions, arguments.out))
