"""The UI and its APIs over HTTP, in process: fragments, headers, guards, cursors, links."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from bs4 import BeautifulSoup

from integration.ui.conftest import Rig
from interlock.rules import Rule, absent, approve, heartbeat, notify, on
from interlock.rules.engine.firing import Firing, firing_id
from interlock.service.store import outbox_entries
from interlock.service.ui.assets import HTMX, static_file


def _soup(text: str) -> BeautifulSoup:
    return BeautifulSoup(text, "html.parser")


async def test_an_htmx_request_gets_the_region_and_the_page_says_it_varies(rig: Rig) -> None:
    page = await rig.client.get("/rules")
    fragment = await rig.client.get("/rules", headers={"HX-Request": "true"})
    restore = await rig.client.get(
        "/rules", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert page.status_code == fragment.status_code == 200
    assert "HX-Request" in page.headers["vary"]
    assert _soup(page.text).find("html") is not None
    assert _soup(fragment.text).find("html") is None
    assert _soup(fragment.text).find(id="rules-table") is not None
    assert _soup(restore.text).find("html") is not None  # Back after a cache miss
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp


async def test_pages_have_one_h1_a_skip_link_landmarks_and_labelled_inputs(rig: Rig) -> None:
    for path in ("/", "/events", "/rules", "/sla", "/firings", "/runs", "/approvals"):
        soup = _soup((await rig.client.get(path)).text)
        assert len(soup.find_all("h1")) == 1, path
        assert soup.find("a", href="#main") is not None, path
        assert soup.find("main", id="main") is not None, path
        assert soup.find("html")["lang"] == "en", path
        for field in soup.find_all(["input", "select"]):
            if field.get("type") == "hidden":
                continue
            assert soup.find("label", attrs={"for": field.get("id")}) is not None, (path, field)
        for table in soup.find_all("table"):
            assert table.find("caption") is not None, path
        assert soup.find("script", src=None) is None, path  # no inline script


async def test_static_files_are_immutable_under_their_digest(rig: Rig) -> None:
    digest = static_file(HTMX).digest
    fresh = await rig.client.get(f"/static/{HTMX}?v={digest}")
    assert fresh.status_code == 200
    assert fresh.headers["cache-control"] == "public, max-age=31536000, immutable"
    stale = await rig.client.get(f"/static/{HTMX}?v=old")
    assert stale.headers["cache-control"] == "no-cache"
    again = await rig.client.get(f"/static/{HTMX}", headers={"If-None-Match": f'"{digest}"'})
    assert again.status_code == 304
    missing = await rig.client.get("/static/nothing.js")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]


async def test_schema_is_served_from_this_origin(rig: Rig) -> None:
    page = await rig.client.get("/schema")
    assert page.status_code == 200
    soup = _soup(page.text)
    scripts = [tag["src"] for tag in soup.find_all("script")]
    assert scripts
    assert all(src.startswith("/static/vendor/") for src in scripts)
    assert (await rig.client.get(scripts[0])).status_code == 200
    assert soup.find("rapi-doc")["spec-url"] == "/schema/openapi.json"
    assert (await rig.client.get("/schema/openapi.json")).status_code == 200


async def test_without_local_mode_pages_ask_to_sign_in(rig: Rig) -> None:
    token = await rig.key("read")
    redirect = await rig.client.get("/rules?state=active")
    assert redirect.status_code == 303
    assert redirect.headers["location"] == "/login?next=%2Frules%3Fstate%3Dactive"
    htmx = await rig.client.get("/rules", headers={"HX-Request": "true"})
    assert (htmx.status_code, htmx.headers["hx-redirect"]) == (401, "/login")
    crossed = await rig.client.get("/rules", headers={"Sec-Fetch-Site": "cross-site"})
    assert crossed.status_code == 200  # a Strict cookie was not sent: reload from here
    assert 'http-equiv="refresh"' in crossed.text
    keyed = await rig.client.get("/rules", headers={"Authorization": f"Bearer {token}"})
    assert keyed.status_code == 200


async def test_sign_in_sets_a_strict_httponly_cookie_and_never_redirects_away(rig: Rig) -> None:
    token = await rig.key("write")
    form = await rig.client.get("/login")
    csrf = _soup(form.text).find("input", attrs={"name": "csrf_token"})["value"]
    signed = await rig.client.post(
        "/login", data={"token": token, "next": "//evil.example/x", "csrf_token": csrf}
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/"
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith("interlock_session=")
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert token not in cookie
    page = await rig.client.get("/rules")  # the client keeps the cookie
    assert page.status_code == 200
    assert "Signed in as key-write" in page.text
    refused = await rig.client.post(
        "/login", data={"token": "il_wrong", "next": "/", "csrf_token": csrf}
    )
    assert refused.status_code == 401


async def test_a_script_with_a_key_needs_no_csrf_token(rig: Rig) -> None:
    await rig.services.rules.apply([Rule(name="quiet", when=on("a.b"))])
    token = await rig.key("write")
    paused = await rig.client.post(
        "/rules/quiet/pause", headers={"Authorization": f"Bearer {token}"}
    )
    assert paused.status_code == 303
    assert (await rig.services.store.rules.get("quiet")).paused
    without = await rig.client.post("/rules/quiet/resume")
    assert without.status_code == 403


def _firing(rule: str, n: int) -> Firing:
    event = uuid.uuid5(uuid.NAMESPACE_URL, f"{rule}/{n}")
    now = datetime.now(UTC).replace(microsecond=0)
    return Firing(
        id=firing_id(rule, "k", "fired", event),
        rule=rule,
        key="k",
        status="fired",
        at=now - timedelta(minutes=n),
        event_ids=[event],
        summary=f"{rule} {n}",
    )


async def test_api_firings_pages_with_a_cursor(rig: Rig) -> None:
    firings = [_firing("paged", n) for n in range(5)]
    await rig.services.store.store_batch(firings)
    seen: list[str] = []
    url = "/api/firings?rule=paged&limit=2"
    while url:
        answer = await rig.client.get(url)
        assert answer.status_code == 200
        seen += [f["id"] for f in answer.json()]
        link = answer.headers.get("link")
        if link is None:
            break
        assert answer.headers["x-next-cursor"] in link
        url = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1)  # type: ignore[union-attr]
    assert seen == [str(f.id) for f in firings]
    bad = await rig.client.get("/api/firings?cursor=nonsense")
    assert bad.status_code == 400
    assert "cursor" in bad.json()["detail"]


async def test_api_windows_lists_what_the_engine_watches(rig: Rig) -> None:
    rule = Rule(
        name="beat",
        when=absent("job.ping", by=heartbeat("1h"), for_each="resource.id", keys=["a", "b"]),
    )
    await rig.services.rules.apply([rule])
    windows = (await rig.client.get("/api/windows?rule=beat")).json()
    assert [(w["key"], w["state"], w["expected"]) for w in windows] == [
        ("a", "pending", 1),
        ("b", "pending", 1),
    ]
    assert (await rig.client.get("/api/windows?state=missed")).json() == []
    assert (await rig.client.get("/api/windows?state=odd")).status_code == 400


async def test_api_events_reads_the_stream(rig: Rig) -> None:
    publisher = rig.services.publisher
    name = f"t.query.q{uuid.uuid4().hex[:6]}"
    events = [
        publisher.event(name, f"res-{n}", labels={"team": "a" if n else "b"}) for n in range(4)
    ]
    await publisher.publish_many(events)
    found = (await rig.client.get(f"/api/events?name={name}")).json()
    assert [e["event"]["resource"]["id"] for e in found["events"]] == [f"res-{n}" for n in range(4)]
    assert found["next"] is None
    newest = (await rig.client.get(f"/api/events?name={name}&order=newest&limit=2")).json()
    assert [e["event"]["resource"]["id"] for e in newest["events"]] == ["res-3", "res-2"]
    labelled = (await rig.client.get(f"/api/events?name={name}&label=team=b")).json()
    assert [e["event"]["resource"]["id"] for e in labelled["events"]] == ["res-0"]
    first = found["events"][0]["sequence"]
    one = (await rig.client.get(f"/api/events/{first}")).json()
    assert one["event"]["id"] == str(events[0].id)
    assert (await rig.client.get("/api/events?name=a..b")).status_code == 400
    assert (await rig.client.get("/api/events/999999")).status_code == 404


async def test_an_approval_links_form_carries_a_token_a_browser_must_send(rig: Rig) -> None:
    rule = Rule(name="gate", when=on("go"), then=[approve("json://127.0.0.1:9/x"), notify("c")])
    firing = _firing("gate", 1)
    await rig.services.store.store_batch([firing], outbox_entries(firing, rule.then))
    (row,) = [r for r in await rig.services.store.outbox.claim(worker="w") if r.index == 0]
    approval = await rig.services.store.approvals.request(
        row, token="t0ken", title="Go?", expires_at=None, on_timeout="reject"
    )
    link = f"/api/approvals/{approval.token}/approve"
    page = await rig.client.get(link)
    assert page.status_code == 200
    csrf = _soup(page.text).find("input", attrs={"name": "csrf_token"})["value"]
    browser = {"Origin": "http://127.0.0.1:8400", "Sec-Fetch-Site": "same-origin"}
    refused = await rig.client.post(link, data={"by": "eve"}, headers=browser)
    assert refused.status_code == 403
    assert (await rig.services.store.approvals.by_token("t0ken")).decision is None
    decided = await rig.client.post(link, data={"by": "ana", "csrf_token": csrf}, headers=browser)
    assert decided.status_code == 200, decided.text
    assert "Approved: Go?" in decided.text


@pytest.mark.parametrize("path", ["/firings/00000000-0000-0000-0000-000000000000", "/rules/none"])
async def test_missing_things_are_html_error_pages(rig: Rig, path: str) -> None:
    answer = await rig.client.get(path)
    assert answer.status_code == 404
    assert "text/html" in answer.headers["content-type"]
    assert _soup(answer.text).find("h1").text == "Not found"
