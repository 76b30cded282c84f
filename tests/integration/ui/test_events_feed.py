"""The events page in a real browser: the live feed, its filters, pause, reconnection."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from harness.interlock_server import RunningServer, publish
from interlock.sdk.event import Event


def _event(name: str, resource: str, **labels: str) -> Event:
    return Event(event=name, resource={"id": resource, **labels}, source="test")


def test_a_published_event_shows_in_the_feed_and_a_filter_hides_the_others(
    server: RunningServer, page: Page, tmp_path: Path, shoot: Callable[[Page, str], Path]
) -> None:
    run = uuid.uuid4().hex[:8]
    sales, other = f"warehouse.sales-{run}", f"warehouse.other-{run}"
    page.goto(f"{server.url}/events")
    feed = page.get_by_role("log", name="Events, newest first")
    expect(page.get_by_role("heading", name="Live feed")).to_be_visible()

    publish(server.nats_url, [_event("db.table.updated", sales)], tmp_path / "spool")
    expect(feed.get_by_text(sales)).to_be_visible()  # live: the page was not reloaded
    publish(server.nats_url, [_event("db.table.updated", other)], tmp_path / "spool")
    expect(feed.get_by_text(other)).to_be_visible()

    page.get_by_label("Resource id").fill(f"warehouse.sales-{run}*")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(rf"/events\?.*resource=warehouse\.sales-{run}"))
    expect(feed.get_by_text(sales)).to_be_visible()
    expect(feed.get_by_text(other)).to_have_count(0)

    later, hidden = f"{sales}-later", f"{other}-later"
    publish(
        server.nats_url,
        [_event("db.table.updated", hidden), _event("db.table.updated", later)],
        tmp_path / "spool",
    )
    expect(feed.get_by_text(later)).to_be_visible()
    expect(feed.get_by_text(hidden)).to_have_count(0)
    shoot(page, "events")


def test_pausing_stops_the_feed_and_resuming_shows_what_came_meanwhile(
    server: RunningServer, page: Page, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    page.goto(f"{server.url}/events?name=ui.pause.{run}")
    feed = page.get_by_role("log")
    page.get_by_role("link", name="Pause").click()
    expect(page.get_by_role("heading", name="Feed (paused)")).to_be_visible()
    publish(server.nats_url, [_event(f"ui.pause.{run}", f"paused-{run}")], tmp_path / "spool")
    page.wait_for_timeout(1000)  # it would have arrived by now, were the feed live
    expect(feed.get_by_text(f"paused-{run}")).to_have_count(0)
    page.get_by_role("link", name="Resume").click()
    expect(feed.get_by_text(f"paused-{run}")).to_be_visible()


def test_an_event_page_shows_its_json_rules_and_firings(
    server: RunningServer, page: Page, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    event = _event("ui.table.updated", "ui.sla", run=run)
    publish(server.nats_url, [event], tmp_path / "spool")
    page.goto(f"{server.url}/events?label=run={run}")
    page.get_by_role("log").get_by_role("link", name="ui.table.updated").click()
    expect(page.get_by_role("heading", name="Event ui.table.updated")).to_be_visible()
    rules = page.get_by_role("region", name="Rules it satisfies")
    expect(rules.get_by_role("link", name="ui-downstream")).to_be_visible()
    expect(rules.get_by_role("link", name="ui-sla")).to_be_visible()
    expect(page.get_by_text(str(event.id)).first).to_be_visible()
    cites = page.get_by_role("region", name="Firings that cite it")
    expect(cites.get_by_role("link", name="ui-downstream")).to_be_visible()
