"""Actions seen and done in a real browser: a webhook's attempts, an approval decided."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from harness.interlock_server import RunningServer, publish
from integration.ui.ui_rules import FlakyReceiver
from interlock.sdk.event import Event


def _firing_of(server: RunningServer, rule: str, event: Event) -> str:
    """The id of ``rule``'s firing caused by ``event`` (waits for it)."""
    with httpx.Client(base_url=server.url, timeout=5) as api:
        for _ in range(100):
            for firing in api.get("/api/firings", params={"rule": rule}).json():
                if str(event.id) in firing["event_ids"]:
                    return str(firing["id"])
            api.get("/api/health")  # a beat: the pipeline stores firings in batches
    raise AssertionError(f"{rule} did not fire for {event.id}")


def test_a_webhook_that_fails_twice_then_succeeds_shows_three_attempts(
    server: RunningServer, receiver: FlakyReceiver, page: Page, tmp_path: Path
) -> None:
    event = Event(event="ui.hook.requested", resource={"id": "hook"}, payload={"n": 1})
    publish(server.nats_url, [event], tmp_path)
    firing = _firing_of(server, "ui-webhook", event)
    page.goto(f"{server.url}/firings/{firing}")
    attempts = page.get_by_role("table", name="Attempts of action 0")
    for _ in range(40):  # the retries back off a few hundred milliseconds
        if attempts.get_by_text("succeeded").count():
            break
        page.wait_for_timeout(250)
        page.reload()
    rows = attempts.get_by_role("row")
    expect(rows).to_have_count(4)  # the header and three attempts
    expect(rows.nth(1)).to_contain_text("failed, retried")
    expect(rows.nth(1)).to_contain_text("503")
    expect(rows.nth(2)).to_contain_text("failed, retried")
    expect(rows.nth(3)).to_contain_text("succeeded")
    expect(page.get_by_role("heading", name="Action 0: webhook succeeded")).to_be_visible()
    assert receiver.paths().count("/hook") == 3


def test_approving_in_the_ui_starts_the_held_run_exactly_once(
    server: RunningServer, receiver: FlakyReceiver, page: Page, tmp_path: Path
) -> None:
    with httpx.Client(base_url=server.url, timeout=5) as api:
        before = len(api.get("/api/runs", params={"deployment": "ui-job"}).json())
    event = Event(event="ui.approval.requested", resource={"id": f"gate-{uuid.uuid4().hex[:6]}"})
    publish(server.nats_url, [event], tmp_path)
    firing = _firing_of(server, "ui-approval", event)
    row = page.get_by_role("row").filter(has=page.locator(f'a[href="/firings/{firing}"]'))
    for _ in range(40):  # its request goes out first
        page.goto(f"{server.url}/approvals")
        if row.count():
            break
        page.wait_for_timeout(250)
    token = _csrf(page)
    row.get_by_label("Your name").fill("ana")
    row.get_by_label("Reason").fill("checked the inputs")
    row.get_by_role("button", name="Approve").click()
    expect(row.get_by_text("approved by ana")).to_be_visible()  # the row, swapped in place
    with httpx.Client(base_url=server.url, timeout=5) as api:
        for _ in range(100):
            runs = api.get("/api/runs", params={"deployment": "ui-job"}).json()
            if len(runs) > before and runs[0]["state"] == "completed":
                break
            page.wait_for_timeout(100)
        assert len(runs) == before + 1
        # Deciding again changes nothing: the approval is closed, nothing else starts.
        again = page.request.post(
            f"{server.url}/approvals/{firing}/approve",
            form={"by": "bob", "csrf_token": token},
            headers={"Origin": server.url},
        )
        assert again.status == 409
        assert len(api.get("/api/runs", params={"deployment": "ui-job"}).json()) == before + 1
    page.goto(f"{server.url}/firings/{firing}")
    expect(page.get_by_role("region", name="Approval")).to_contain_text("approved by ana")


def _csrf(page: Page) -> str:
    value = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert value
    return value


def test_running_a_deployment_follows_its_log_and_state_live(
    server: RunningServer, page: Page
) -> None:
    page.goto(f"{server.url}/runs")
    page.get_by_role("button", name="Run ui-slow").click()
    expect(page.get_by_role("heading", name="Run of ui-slow")).to_be_visible()
    log = page.get_by_role("log", name="Run log")
    expect(log).to_contain_text("step 0")
    expect(log).to_contain_text("step 5")  # appended as it is written: no reload
    state = page.locator("#run-state")
    expect(state.get_by_text("completed", exact=True)).to_be_visible()
    expect(state.get_by_role("listitem").filter(has_text="started")).to_be_visible()
    assert log.inner_text().count("step 0") == 1
