"""The live feed under load and across a restart of the service."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from harness.interlock_server import RunningServer, interlock_server, publish
from harness.ports import free_port
from integration.ui.watch import Watch
from interlock.sdk import NatsOptions, PublisherConfig
from interlock.sdk.event import Event
from interlock.sdk.sync import SyncPublisher

MAX_ROWS = 100
"""What the feed keeps (interlock.service.ui.pages.events.MAX_ROWS)."""


def _flood(nats_url: str, name: str, rate: int, seconds: float, spool: Path) -> int:
    """Publish ``rate`` events/s named ``name`` for ``seconds``; how many were sent."""
    config = PublisherConfig(nats=NatsOptions(servers=(nats_url,)), source="flood", spool_dir=spool)
    publisher = SyncPublisher(config)
    sent, started = 0, time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate) - sent
            if due > 0:
                publisher.publish_many(
                    Event(event=name, resource={"id": f"flood-{sent + n}"}) for n in range(due)
                )
                sent += due
            time.sleep(0.02)
    finally:
        publisher.close()
    return sent


def test_at_2000_events_a_second_the_feed_stays_responsive_and_bounded(
    server: RunningServer, page: Page, tmp_path: Path
) -> None:
    name = f"ui.flood.f{uuid.uuid4().hex[:8]}"
    page.goto(f"{server.url}/events?name={name}")
    rows = page.get_by_role("log").get_by_role("listitem")
    sent: list[int] = []
    flood = threading.Thread(
        target=lambda: sent.append(_flood(server.nats_url, name, 2000, 4.0, tmp_path))
    )
    flood.start()
    try:
        expect(rows.first).to_be_visible()
        peak = 0
        while flood.is_alive():
            peak = max(peak, rows.count())
            assert peak <= MAX_ROWS
            page.wait_for_timeout(200)
        # Still answering: pausing swaps the feed at once, under the flood's tail.
        page.get_by_role("link", name="Pause").click()
        expect(page.get_by_role("heading", name="Feed (paused)")).to_be_visible()
    finally:
        flood.join()
    assert sent[0] >= 7000
    page.get_by_role("link", name="Resume").click()
    expect(page.get_by_role("heading", name="Live feed")).to_be_visible()
    newest = f"flood-{sent[0] - 1}"
    expect(rows.first).to_contain_text(newest)  # the newest on top
    assert rows.count() == MAX_ROWS


def test_a_reconnecting_feed_neither_loses_nor_repeats_events(
    watched: tuple[BrowserContext, Watch], page: Page, tmp_path: Path
) -> None:
    # While the service is down the browser says so in its console: expected here.
    watched[1].expected += ["ERR_INCOMPLETE_CHUNKED_ENCODING", "ERR_CONNECTION_REFUSED"]
    watched[1].expected.append("[object Event]")  # htmx's log of the stream's error event
    workdir, port = tmp_path / "restarted", free_port()
    env = {"INTERLOCK_API__PORT": str(port), "INTERLOCK_ENGINE__CONSUMER_MAX_WAIT": "50ms"}
    name = f"ui.restart.r{uuid.uuid4().hex[:8]}"
    feed = page.get_by_role("log")

    def shown(n: int) -> int:
        return feed.get_by_text(f"restart-{n}", exact=True).count()

    with interlock_server(workdir, env=env) as first:
        page.goto(f"{first.url}/events?name={name}")
        publish(
            first.nats_url,
            [Event(event=name, resource={"id": f"restart-{n}"}) for n in range(3)],
            tmp_path / "spool",
        )
        expect(feed.get_by_text("restart-2", exact=True)).to_be_visible()
    # The service is down: the browser keeps trying to reconnect, then does, saying the
    # last event it received; what was stored meanwhile comes, and nothing twice.
    with interlock_server(workdir, env=env) as second:
        assert second.url == first.url
        publish(
            second.nats_url,
            [Event(event=name, resource={"id": f"restart-{n}"}) for n in range(3, 6)],
            tmp_path / "spool",
        )
        expect(feed.get_by_text("restart-5", exact=True)).to_be_visible(timeout=30_000)
        page.wait_for_timeout(500)  # anything repeated would have come with them
        assert [shown(n) for n in range(6)] == [1] * 6
        assert page.url.endswith(f"/events?name={name}")  # the page was never reloaded
