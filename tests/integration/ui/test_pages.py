"""Every page in a real browser: it renders, stays on 127.0.0.1, logs no console error;
and the same pages read, filter and act with JavaScript off."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from harness.interlock_server import RunningServer, publish
from interlock.sdk.event import Event


def _some(server: RunningServer, path: str, params: dict[str, str]) -> str:
    """The id of the first item ``path`` lists (waits until there is one)."""
    with httpx.Client(base_url=server.url, timeout=5) as api:
        for _ in range(200):
            found = api.get(path, params=params).json()
            if found:
                return str(found[0]["id"])
            api.get("/api/health")
    raise AssertionError(f"nothing in {path} {params}")


@pytest.fixture(scope="module")
def seeded(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    """The server with a firing, a run and events to show."""
    spool = tmp_path_factory.mktemp("spool")
    publish(
        server.nats_url,
        [
            Event(event="ui.table.updated", resource={"id": "ui.sla", "team": "sales"}),
            Event(event="ui.load.started", resource={"id": "pages-load"}),
        ],
        spool,
    )
    _some(server, "/api/runs", {"deployment": "ui-report"})
    return server


PAGES = [
    ("/", "Overview"),
    ("/events", "Events"),
    ("/rules", "Rules"),
    ("/rules/ui-sla", "Rule ui-sla"),
    ("/sla", "SLA board"),
    ("/firings", "Firings"),
    ("/runs", "Deployments and runs"),
    ("/approvals", "Approvals"),
    ("/channels", "Channels"),
    ("/keys", "API keys"),
]


def test_every_page_renders_offline_without_console_errors(
    seeded: RunningServer, page: Page, shoot: Callable[[Page, str], Path]
) -> None:
    for path, heading in PAGES:
        response = page.goto(f"{seeded.url}{path}")
        assert response is not None
        assert response.status == 200, path
        expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()
        expect(page.locator("main")).to_be_visible()
        assert page.locator("h1").count() == 1, path
        if path == "/":
            expect(page.get_by_role("region", name="Health")).to_contain_text("ok")
        shoot(page, path.strip("/").replace("/", "-") or "overview")
    firing = _some(seeded, "/api/firings", {"rule": "ui-downstream"})
    page.goto(f"{seeded.url}/firings/{firing}")
    expect(page.get_by_role("heading", name="Firing of ui-downstream")).to_be_visible()
    page.get_by_role("region", name="Why it fired").get_by_role("link").last.click()
    expect(page.get_by_role("heading", name="Event ui.table.updated")).to_be_visible()
    run = _some(seeded, "/api/runs", {"deployment": "ui-report"})
    page.goto(f"{seeded.url}/runs/{run}")
    expect(page.get_by_role("log", name="Run log")).to_contain_text("report")
    page.goto(f"{seeded.url}/schema")
    expect(page).to_have_title("Interlock API")
    expect(page.get_by_text("Query recorded events").first).to_be_attached()  # rendered


def test_times_show_in_the_browsers_zone_with_utc_on_hover(
    browser: Browser, seeded: RunningServer
) -> None:
    context = browser.new_context(timezone_id="Asia/Tokyo", locale="en-GB")
    try:
        page = context.new_page()
        page.goto(f"{seeded.url}/firings")
        stamp = page.locator("time[data-local]").first
        expect(stamp).to_have_attribute("title", re.compile(r" UTC$"))
        expect(stamp).not_to_contain_text("UTC")  # rewritten in the browser's zone
        utc = stamp.get_attribute("datetime")
        assert utc is not None
        hour = int(utc[11:13])
        assert f"{(hour + 9) % 24:02d}:" in stamp.inner_text()
    finally:
        context.close()


@pytest.fixture
def no_js(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(java_script_enabled=False)
    yield context.new_page()
    context.close()


def test_pages_read_filter_and_act_without_javascript(seeded: RunningServer, no_js: Page) -> None:
    page = no_js
    for path, heading in PAGES:
        page.goto(f"{seeded.url}{path}")
        expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()

    page.goto(f"{seeded.url}/events")
    page.get_by_label("Label").fill("team=sales")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"label=team%3Dsales"))
    expect(page.get_by_role("log").get_by_text("ui.sla").first).to_be_visible()

    page.goto(f"{seeded.url}/rules")
    page.get_by_label("State").select_option("active")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name="ui-load")).to_be_visible()

    page.goto(f"{seeded.url}/rules/ui-load")
    page.get_by_role("button", name="Pause rule").click()  # a form POST, then a redirect
    expect(page.get_by_role("button", name="Resume rule")).to_be_visible()
    page.get_by_role("button", name="Resume rule").click()
    expect(page.get_by_role("button", name="Pause rule")).to_be_visible()

    page.goto(f"{seeded.url}/sla")
    page.get_by_label("Rule").select_option("ui-load")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("table").get_by_text("pages-load")).to_be_visible()
