"""The SLA board in a real browser: a short real window goes pending, missed, resolved late."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from harness.interlock_server import RunningServer, publish
from interlock.sdk.event import Event


def test_a_window_moves_from_pending_to_missed_and_a_late_event_resolves_it(
    server: RunningServer, page: Page, tmp_path: Path, shoot: Callable[[Page, str], Path]
) -> None:
    key = f"load-{uuid.uuid4().hex[:8]}"
    publish(server.nats_url, [Event(event="ui.load.started", resource={"id": key})], tmp_path)
    page.goto(f"{server.url}/sla")
    board = page.get_by_role("table", name="windows")
    row = board.get_by_role("row").filter(has_text=key)
    expect(row.get_by_text("pending", exact=True)).to_be_visible()
    expect(row.get_by_text("0 of 1")).to_be_visible()

    # The board is live: the miss shows without reloading the page.
    expect(row.get_by_text("missed", exact=True)).to_be_visible(timeout=20_000)

    others = [f"{key}-{n}" for n in ("eu", "us", "apac")]
    started = [Event(event="ui.load.started", resource={"id": other}) for other in others]
    publish(server.nats_url, started, tmp_path)
    publish(server.nats_url, [Event(event="ui.load.finished", resource={"id": key})], tmp_path)
    expect(row.get_by_text("resolved late")).to_be_visible()
    expect(row.get_by_text("missed", exact=True)).to_have_count(0)
    for other in others:  # new rows come in live too
        expect(board.get_by_role("row").filter(has_text=other)).to_contain_text("pending")
    expect(page.locator("#sla-counts")).to_contain_text("1 resolved late")  # and the counts
    shoot(page, "sla-board")

    page.get_by_label("State").select_option("resolved")
    page.get_by_role("button", name="Filter").click()
    expect(board.get_by_role("row").filter(has_text=key)).to_have_count(1)
    expect(board.get_by_text("pending", exact=True)).to_have_count(0)


def test_a_missed_sla_firing_says_what_is_downstream(server: RunningServer, page: Page) -> None:
    # ui-sla's key misses 4 s after the server started, and again every 4 s.
    firings = page.get_by_role("table", name="Firings, newest first")
    for _ in range(40):
        page.goto(f"{server.url}/firings?rule=ui-sla&status=fired")
        if firings.count():
            break
        page.wait_for_timeout(500)
    firings.get_by_role("link").first.click()
    expect(page.get_by_role("heading", name="Firing of ui-sla")).to_be_visible()
    downstream = page.get_by_role("region", name="Downstream of this miss")
    expect(downstream.get_by_role("link", name="ui-downstream")).to_be_visible()
    expect(downstream.get_by_text("ui-report")).to_be_visible()
