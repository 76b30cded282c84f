"""Signing in with API keys: what a read-scope session sees and may do; CSRF; signing out.

A server of its own: creating a key ends local mode for the whole server.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from harness.interlock_server import RunningServer, interlock_server
from integration.ui.ui_rules import DEPLOYMENTS, SERVER_ENV, rules_module
from integration.ui.watch import Watch


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str, str]]:
    """A server with an admin key and a read key (their tokens)."""
    workdir = tmp_path_factory.mktemp("keyed")
    with interlock_server(
        workdir,
        rules={"ui_rules.py": rules_module("http://127.0.0.1:9")},
        deployments=DEPLOYMENTS,
        env=SERVER_ENV,
    ) as server:
        with httpx.Client(base_url=server.url, timeout=5) as api:
            admin = api.post("/api/keys", json={"name": "ops-admin", "scopes": ["admin"]})
            assert admin.status_code == 201, admin.text
            token = admin.json()["token"]
            reader = api.post(
                "/api/keys",
                json={"name": "auditor", "scopes": ["read"]},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert reader.status_code == 201, reader.text
        time.sleep(1.2)  # a first key ends local mode within the key cache's second
        yield server, token, reader.json()["token"]


def _sign_in(page: Page, url: str, token: str) -> None:
    page.goto(f"{url}/rules/ui-webhook")
    expect(page.get_by_role("heading", name="Sign in to Interlock")).to_be_visible()
    page.get_by_label("API key").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Rule ui-webhook")).to_be_visible()


def _csrf(page: Page) -> str:
    value = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert value
    return value


def test_a_read_scope_session_sees_no_action_buttons_and_its_forged_post_is_refused(
    keyed: tuple[RunningServer, str, str], page: Page
) -> None:
    server, _, read_token = keyed
    _sign_in(page, server.url, read_token)
    expect(page.get_by_text("Signed in as auditor")).to_be_visible()
    expect(page.get_by_role("button", name="Pause rule")).to_have_count(0)
    for path in ("/runs", "/approvals", "/channels", "/"):
        page.goto(f"{server.url}{path}")
        actions = page.get_by_role("button").filter(has_not_text=re.compile("Sign out|Filter"))
        expect(actions).to_have_count(0)
    expect(page.get_by_role("link", name="API keys")).to_have_count(0)
    assert page.request.get(f"{server.url}/keys").status == 403

    page.goto(f"{server.url}/rules/ui-webhook")
    forged = page.request.post(
        f"{server.url}/rules/ui-webhook/pause",
        form={"csrf_token": _csrf(page)},
        headers={"Origin": server.url},
        max_redirects=0,
    )
    assert forged.status == 403
    with httpx.Client(base_url=server.url, timeout=5) as api:
        rule = api.get("/api/rules/ui-webhook", headers={"X-API-Key": read_token}).json()
    assert rule["paused"] is False

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Interlock")).to_be_visible()
    page.goto(f"{server.url}/")
    expect(page.get_by_role("heading", name="Sign in to Interlock")).to_be_visible()


def test_a_post_without_the_csrf_token_or_from_another_origin_is_refused(
    keyed: tuple[RunningServer, str, str], browser: Browser, page: Page
) -> None:
    server, admin_token, _ = keyed
    _sign_in(page, server.url, admin_token)
    expect(page.get_by_role("button", name="Pause rule")).to_be_visible()
    token = _csrf(page)
    pause = f"{server.url}/rules/ui-webhook/pause"
    missing = page.request.post(pause, form={}, headers={"Origin": server.url}, max_redirects=0)
    assert missing.status == 403
    assert "CSRF" in missing.text()
    wrong = page.request.post(
        pause, form={"csrf_token": token[::-1]}, headers={"Origin": server.url}, max_redirects=0
    )
    assert wrong.status == 403
    foreign = page.request.post(
        pause,
        form={"csrf_token": token},
        headers={"Origin": "http://evil.example"},
        max_redirects=0,
    )
    assert foreign.status == 403
    # Another browser (no session) with a token of its own page: refused too.
    stranger: BrowserContext = browser.new_context()
    try:
        assert stranger.request.post(pause, form={"csrf_token": token}).status == 403
    finally:
        stranger.close()

    page.get_by_role("button", name="Pause rule").click()
    expect(page.get_by_role("button", name="Resume rule")).to_be_visible()
    expect(page.get_by_text("paused", exact=True).first).to_be_visible()
    page.get_by_role("button", name="Resume rule").click()
    expect(page.get_by_role("button", name="Pause rule")).to_be_visible()


def test_a_wrong_key_is_refused_at_sign_in(
    keyed: tuple[RunningServer, str, str], watched: tuple[BrowserContext, Watch], page: Page
) -> None:
    server, _, _ = keyed
    watched[1].expected.append("status of 401 (Unauthorized)")  # the form again, with why
    page.goto(f"{server.url}/login")
    page.get_by_label("API key").fill("il_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")


def test_admins_manage_keys_and_see_a_token_once(
    keyed: tuple[RunningServer, str, str], page: Page, tmp_path: Path
) -> None:
    server, admin_token, _ = keyed
    _sign_in(page, server.url, admin_token)
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("robot")
    page.get_by_label("Scope").select_option("publish")
    page.get_by_role("button", name="Create key").click()
    status = page.get_by_role("status")
    expect(status).to_contain_text("Key robot was created")
    page.goto(f"{server.url}/keys")
    expect(page.get_by_role("status")).to_have_count(0)
    page.get_by_role("button", name="Revoke robot").click()
    expect(page.get_by_role("row").filter(has_text="robot")).to_contain_text("revoked")
