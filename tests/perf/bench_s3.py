"""S3 adapter poll cost: a bucket of 10,000 objects, then 10 new ones.

For each checkpoint shape of ``s3.poll`` (``track = "watermark"``, ``track = "keys"``):
the first poll (every object is new) and the incremental poll after 10 uploads, as the
number of HTTP requests the adapter sent (counted with a botocore ``before-send`` hook,
retries included), the seconds the poll took and the size of the checkpoint it saves.
For comparison, ``s3.sqs`` consuming the 10 uploads' notifications from a queue
(receive and delete requests). Publishing is not included: only the adapter's side.

The server is moto's (``ThreadedMotoServer``, over HTTP as boto3 talks to AWS): the
request counts are what AWS would bill; the seconds are moto's on this machine, not
S3's. The 10,000 objects are seeded straight into moto's backend (uploading them over
HTTP takes a minute and is not what is measured), last modified over the past week as
in a bucket in use; the 10 new ones are uploaded over HTTP. Each shape has its own bucket.

    python tests/perf/bench_s3.py [--objects 10000] [--new 10] [--rounds 3] [--out .bench]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from figures import write_figures
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer

from interlock.adapters.base import PollingAdapter
from interlock.adapters.s3 import S3NotificationAdapter, S3PollingAdapter

BUCKET = "landing"
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


class Counted:
    """An adapter whose HTTP requests are counted."""

    def __init__(self, adapter: PollingAdapter, client: Any) -> None:
        self.adapter = adapter
        self.requests = 0
        client.meta.events.register("before-send", self._count)

    def _count(self, **_: Any) -> None:
        self.requests += 1

    def poll_until_caught_up(self, checkpoint: dict[str, Any] | None) -> dict[str, Any]:
        """Poll (and acknowledge) until nothing more right away; return the measurements."""
        self.requests = 0
        polls = events = 0
        started = time.perf_counter()
        while True:
            result = self.adapter.poll(checkpoint)
            self.adapter.acknowledge(result)
            checkpoint = result.checkpoint
            polls += 1
            events += len(result.events)
            if not result.more:
                break
        seconds = time.perf_counter() - started
        return {
            "requests": self.requests,
            "seconds": round(seconds, 4),
            "polls": polls,
            "events": events,
            "checkpoint": checkpoint,
            "checkpoint_bytes": len(json.dumps(checkpoint)),
        }


def seed(bucket: str, count: int) -> None:
    """``count`` objects, last modified one minute apart over the week before now."""
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    oldest = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=7)
    for n in range(count):
        key = backend.put_object(bucket, f"exports/{n:06d}.csv", b"x" * 64)
        key.last_modified = oldest + timedelta(minutes=n)


def upload(s3: Any, bucket: str, prefix: str, count: int) -> None:
    for n in range(count):
        s3.put_object(Bucket=bucket, Key=f"exports/{prefix}-{n:03d}.csv", Body=b"new")


def bench_poller(url: str, s3: Any, track: str, new: int, rounds: int) -> dict[str, object]:
    bucket = f"{BUCKET}-{track}"
    options = {"bucket": bucket, "endpoint_url": url, "region": REGION, "track": track}
    adapter = S3PollingAdapter.from_options(f"bench-{track}", {**options, **CREDENTIALS})
    counted = Counted(adapter, adapter.client)
    first = counted.poll_until_caught_up(None)
    checkpoint = first.pop("checkpoint")
    incremental = []
    for round_ in range(rounds):
        upload(s3, bucket, f"new-{round_}", new)
        figures = counted.poll_until_caught_up(checkpoint)
        checkpoint = figures.pop("checkpoint")
        assert figures["events"] == new, figures
        incremental.append(figures)
    adapter.close()
    return {
        "first_poll": first,
        "incremental_poll": {
            "requests": incremental[-1]["requests"],
            "seconds_median": statistics.median(f["seconds"] for f in incremental),
            "events": new,
            "checkpoint_bytes": incremental[-1]["checkpoint_bytes"],
            "rounds": [f["seconds"] for f in incremental],
        },
    }


def bench_notifications(url: str, s3: Any, sqs: Any, new: int) -> dict[str, object]:
    queue_url = sqs.create_queue(QueueName="landing-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": arn["Attributes"]["QueueArn"], "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )
    options = {"queue_url": queue_url, "endpoint_url": url, "region": REGION, "wait_time": 0}
    adapter = S3NotificationAdapter.from_options("bench-sqs", {**options, **CREDENTIALS})
    counted = Counted(adapter, adapter.client)
    counted.poll_until_caught_up(None)  # the s3:TestEvent S3 sends on configuration
    upload(s3, BUCKET, "sqs", new)
    figures = counted.poll_until_caught_up(None)
    figures.pop("checkpoint")
    figures.pop("checkpoint_bytes")
    assert figures["events"] == new, figures
    adapter.close()
    return figures


def main(objects: int, new: int, rounds: int, out: Path) -> dict[str, object]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        s3 = boto3.client("s3", endpoint_url=url, region_name=REGION, **CREDENTIALS)
        sqs = boto3.client("sqs", endpoint_url=url, region_name=REGION, **CREDENTIALS)
        started = time.perf_counter()
        for track in ("watermark", "keys"):
            s3.create_bucket(Bucket=f"{BUCKET}-{track}")
            seed(f"{BUCKET}-{track}", objects)
        s3.create_bucket(Bucket=BUCKET)
        print(f"  seeded 2 x {objects:,} objects in {time.perf_counter() - started:.1f}s")
        results: dict[str, object] = {}
        for track in ("watermark", "keys"):
            results[f"poll_{track}"] = bench_poller(url, s3, track, new, rounds)
            print(f"  s3.poll track={track}: {json.dumps(results[f'poll_{track}'])}")
        results["sqs_notifications"] = bench_notifications(url, s3, sqs, new)
        print(f"  s3.sqs: {json.dumps(results['sqs_notifications'])}")
    finally:
        server.stop()
    figures: dict[str, object] = {
        "benchmark": "s3_poll_cost",
        "objects": objects,
        "new_objects": new,
        "server": "moto ThreadedMotoServer (HTTP); seconds are moto's, request counts are S3's",
        **results,
    }
    write_figures(out / "s3.json", figures)
    for track in ("watermark", "keys"):
        poll: Any = results[f"poll_{track}"]
        first, incremental = poll["first_poll"], poll["incremental_poll"]
        print(
            f"s3.poll ({track}): first poll {first['requests']} requests, "
            f"{first['seconds']:.2f}s, {first['events']:,} events, checkpoint "
            f"{first['checkpoint_bytes']:,} B; incremental ({new} new) "
            f"{incremental['requests']} requests, {incremental['seconds_median']:.2f}s, "
            f"checkpoint {incremental['checkpoint_bytes']:,} B"
        )
    sqs_figures: Any = results["sqs_notifications"]
    print(
        f"s3.sqs: {new} new objects in {sqs_figures['requests']} requests, "
        f"{sqs_figures['seconds']:.2f}s"
    )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--new", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    arguments = parser.parse_args()
    main(arguments.objects, arguments.new, arguments.rounds, arguments.out)
