"""HTTP ingest from one sequential client: ``interlock server`` against ``prefect server``.

Issue 15's figure: one client posting ``POST /api/events`` one request after the other
(no concurrency), batches of 100 and one event per request, into the whole service as
users run it (``interlock server`` on SQLite with its pipeline consuming what arrives,
a nats-server of its own) and, in the same run, into Prefect's server
(``prefect server start``, SQLite, its ``POST /api/events`` taking the same events in
Prefect's shape). The two are measured in turns, ``--rounds`` times, so a slow phase of
the shared machine shows in both; the figure that matters is the ratio within a round.

Interlock answers 202 once JetStream acknowledged every event (the benchmark checks the
stream holds them all); Prefect answers 204 once the events are on its in-memory
message bus (persisted later by its event persister). Both are posted by the same lean
keep-alive HTTP/1.1 client (:func:`post_sequentially`): each request written as one
buffer, the answer read by its length, so the client costs little of the 2 cores the
servers share with it.

    python tests/perf/bench_ingest_sequential.py [--events 30000] [--singles 2000]
                                                 [--rounds 3] [--out .bench]

``--before DIR`` runs a second ``interlock server`` from another version's sources (the
workspace members' ``src`` folders under ``DIR``) and measures it in the same turns: the
"before" of a change, interleaved with it on the same machine.

Prefect (3.8.8) runs as the Prefect adapter's tests run it, from their virtualenv (built
on first use from ``tests/envs/prefect/requirements.txt``; where it cannot be built, or
with ``--no-prefect``, Interlock is measured alone): SQLite, an auth string, its event
persister flushing every 0.5 s.
``BENCH_PROFILE=FILE`` runs the Interlock server under cProfile into ``FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
from bench_service import launch, process_cpu, stop
from cryptography.fernet import Fernet
from figures import write_figures

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the harness
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration/adapters/prefect"))

from interlock.sdk import EVENTS_STREAM
from interlock.service.embedded_nats import EmbeddedNatsServer

TARGET = 30_000
"""Events per second, batches of 100 (issue 15)."""
TARGET_RATIO = 10.0
"""Times Prefect's rate in the same round (issue 15)."""
BATCH = 100
MEMBERS = ("sdk", "rules", "service", "adapters")
"""The workspace members whose code ``--before`` replaces."""
PAD = "x" * 180


def interlock_event(run: str, n: int, occurred: str) -> dict[str, Any]:
    """An Interlock event as the bench posts it (about 390 bytes, as bench_ingest's)."""
    return {
        "id": str(uuid.uuid4()),
        "occurred": occurred,
        "event": "bench.table.updated",
        "resource": {"id": "warehouse.sales", "schema": "dw"},
        "payload": {"run": run, "n": n, "pad": PAD},
    }


def prefect_event(run: str, n: int, occurred: str) -> dict[str, Any]:
    """The same event in Prefect's shape (its resource id is ``prefect.resource.id``)."""
    event = interlock_event(run, n, occurred)
    event["resource"] = {"prefect.resource.id": "warehouse.sales", "schema": "dw"}
    return event


def bodies(kind: str, count: int, per_request: int, run: str) -> list[bytes]:
    """``count`` events of ``kind`` (interlock, prefect) in bodies of ``per_request``."""
    make = interlock_event if kind == "interlock" else prefect_event
    occurred = datetime.now(UTC).isoformat()
    out = []
    for start in range(0, count, per_request):
        events = [make(run, n, occurred) for n in range(start, min(start + per_request, count))]
        one = per_request == 1 and kind == "interlock"  # Prefect takes lists only
        out.append(json.dumps(events[0] if one else events).encode())
    return out


async def post_sequentially(
    url: str, path: str, payloads: list[bytes], headers: dict[str, str], ok: int
) -> float:
    """Post every body in turn over one keep-alive connection; return the seconds taken.

    Raises:
        RuntimeError: an answer's status was not ``ok``.
    """
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request_head = f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\n{head}".encode()
    started = time.perf_counter()
    try:
        for body in payloads:
            writer.write(b"%scontent-length: %d\r\n\r\n%s" % (request_head, len(body), body))
            response_head = await reader.readuntil(b"\r\n\r\n")
            status = int(response_head.split(b" ", 2)[1])
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in response_head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            answer = await reader.readexactly(length)
            if status != ok:
                raise RuntimeError(f"{path}: {status}: {answer[:300]!r}")
        return time.perf_counter() - started
    finally:
        writer.close()
        await writer.wait_closed()


@contextlib.contextmanager
def interlock_service(
    scratch: Path, python_path: str | None = None
) -> Iterator[tuple[str, str, int]]:
    """``interlock server`` on SQLite with a nats-server: (API URL, NATS URL, server pid).

    ``python_path`` runs another version of Interlock's code (``--before``).
    """
    with EmbeddedNatsServer(store_dir=scratch / "js", port=0) as nats_server:
        env = {
            **os.environ,
            "INTERLOCK_NATS_URL": nats_server.url,
            "INTERLOCK_DATABASE_URL": f"sqlite:///{scratch / 'interlock.db'}",
            "INTERLOCK_SECRET_KEY": Fernet.generate_key().decode(),
            "INTERLOCK_DATA_DIR": str(scratch / "data"),
            "INTERLOCK_RULES_DIR": str(scratch / "no-rules"),
            "INTERLOCK_API__PORT": "0",
        }
        if python_path:
            env["PYTHONPATH"] = python_path
        scratch.mkdir(parents=True, exist_ok=True)
        process, url, _ = launch(env, scratch / "server.log", scratch)
        try:
            yield url, nats_server.url, process.pid
        finally:
            stop(process)


async def stored_events(nats_url: str) -> int:
    """How many events the stream holds."""
    nc = await nats.connect(nats_url)
    try:
        return (await nc.jetstream().stream_info(EVENTS_STREAM)).state.messages  # type: ignore[no-any-return]
    finally:
        await nc.close()


async def measure(
    target: dict[str, Any], events: int, singles: int, round_: int
) -> dict[str, float]:
    """One round against one server: batches of 100, then one event per request."""
    kind = target["kind"]
    rates = {}
    for label, count, per_request in (("batch", events, BATCH), ("single", singles, 1)):
        payloads = bodies(kind, count, per_request, f"{kind}-{label}-{round_}")
        before = await stored_events(target["nats"]) if kind == "interlock" else 0
        cpu = process_cpu(target["pid"]) if target.get("pid") else 0.0
        seconds = await post_sequentially(
            target["url"], "/api/events", payloads, target["headers"], target["ok"]
        )
        cpu = (process_cpu(target["pid"]) - cpu) if target.get("pid") else 0.0
        if kind == "interlock":
            stored = await stored_events(target["nats"]) - before
            if stored != count:
                raise RuntimeError(f"the stream took {stored} of {count} events")
        rates[f"{label}_events_per_s"] = count / seconds
        if target.get("pid"):
            rates[f"{label}_server_cpu_us_per_event"] = cpu / count * 1e6
    return rates


def warm_up(target: dict[str, Any]) -> None:
    """Imports, connections and caches warm before anything is timed."""
    for per_request in (BATCH, 1):
        payloads = bodies(target["kind"], 1_000 if per_request > 1 else 100, per_request, "warm")
        asyncio.run(
            post_sequentially(
                target["url"], "/api/events", payloads, target["headers"], target["ok"]
            )
        )


def run(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        targets = []
        versions = [("interlock", None)]
        if args.before:
            source = args.before.resolve()
            path = ":".join(str(source / member / "src") for member in MEMBERS)
            versions.insert(0, ("before", path))
        for name, python_path in versions:
            service = interlock_service(scratch / name, python_path)
            url, nats_url, pid = stack.enter_context(service)
            targets.append(
                {
                    "name": name,
                    "kind": "interlock",
                    "url": url,
                    "nats": nats_url,
                    "pid": pid,
                    "headers": {"content-type": "application/json"},
                    "ok": 202,
                }
            )
        if args.prefect:
            from prefect_server import running_prefect_server  # noqa: PLC0415

            try:
                connection = stack.enter_context(running_prefect_server(scratch / "prefect"))
            except RuntimeError as exc:  # its virtualenv cannot be built here (offline)
                print(f"  Prefect not measured: {str(exc)[:300]}")
                args.prefect = False
        if args.prefect:
            targets.append(
                {
                    "name": "prefect",
                    "kind": "prefect",
                    "url": connection.api_url.removesuffix("/api"),
                    "headers": {"content-type": "application/json", **connection.headers()},
                    "ok": 204,
                }
            )
        for target in targets:
            warm_up(target)
        rounds: list[dict[str, Any]] = []
        for round_ in range(args.rounds):
            figures: dict[str, Any] = {"load_average": os.getloadavg()[0]}
            for target in targets:
                rates = asyncio.run(measure(target, args.events, args.singles, round_))
                figures.update({f"{target['name']}_{key}": value for key, value in rates.items()})
            for label in ("batch", "single"):
                if args.prefect:
                    figures[f"{label}_ratio"] = (
                        figures[f"interlock_{label}_events_per_s"]
                        / figures[f"prefect_{label}_events_per_s"]
                    )
                if args.before:
                    figures[f"{label}_ratio_to_before"] = (
                        figures[f"interlock_{label}_events_per_s"]
                        / figures[f"before_{label}_events_per_s"]
                    )
            rounds.append({key: round(value, 2) for key, value in figures.items()})
            print(f"  round {round_ + 1}: " + describe(rounds[-1]))
    return summarize(rounds, args)


def describe(figures: dict[str, Any]) -> str:
    parts = []
    for label, unit in (("batch", "batches of 100"), ("single", "one per request")):
        text = f"Interlock {figures[f'interlock_{label}_events_per_s']:,.0f} events/s"
        text += f" ({figures[f'interlock_{label}_server_cpu_us_per_event']:.0f} us CPU/event)"
        if f"prefect_{label}_events_per_s" in figures:
            text += f", Prefect {figures[f'prefect_{label}_events_per_s']:,.0f}"
            text += f" = {figures[f'{label}_ratio']:.1f}x"
        if f"before_{label}_events_per_s" in figures:
            text += f"; before {figures[f'before_{label}_events_per_s']:,.0f}"
            text += f" ({figures[f'before_{label}_server_cpu_us_per_event']:.0f} us)"
        parts.append(f"{unit}: {text}")
    return "; ".join(parts) + f" (load {figures['load_average']:.1f})"


def summarize(rounds: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "benchmark": "api_ingest_sequential",
        "events": args.events,
        "singles": args.singles,
        "batch": BATCH,
        "clients": 1,
        "target_events_per_s": TARGET,
        "target_ratio": TARGET_RATIO,
        "rounds": rounds,
    }
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        figures[f"{key}_min"] = min(values)
        figures[f"{key}_median"] = round(statistics.median(values), 2)
        figures[f"{key}_max"] = max(values)
    batch = figures["interlock_batch_events_per_s_min"]
    figures["meets_rate"] = batch >= TARGET
    if args.prefect:
        figures["meets_ratio"] = figures["batch_ratio_min"] >= TARGET_RATIO
    return figures


def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        figures = run(args, Path(scratch))
    write_figures(args.out / "ingest_sequential.json", figures)
    line = (
        f"Sequential ingest, batches of 100: Interlock "
        f"{figures['interlock_batch_events_per_s_min']:,.0f}-"
        f"{figures['interlock_batch_events_per_s_max']:,.0f} events/s (target {TARGET:,})"
    )
    if args.prefect:
        line += (
            f", Prefect {figures['prefect_batch_events_per_s_min']:,.0f}-"
            f"{figures['prefect_batch_events_per_s_max']:,.0f}: "
            f"{figures['batch_ratio_min']:.1f}-{figures['batch_ratio_max']:.1f}x "
            f"(target {TARGET_RATIO:g}x)"
        )
    line += (
        f"; one per request: Interlock {figures['interlock_single_events_per_s_min']:,.0f}-"
        f"{figures['interlock_single_events_per_s_max']:,.0f}"
    )
    print(f"{line} -> {args.out / 'ingest_sequential.json'}")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--singles", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-prefect", dest="prefect", action="store_false")
    parser.add_argument(
        "--before",
        type=Path,
        help="a copy of the previous version (e.g. `git archive HEAD~1 sdk rules service "
        "adapters | tar -x -C DIR`): measured too, in turns with this one",
    )
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    main(parser.parse_args())
