"""Firings (with their actions' states), channels (never a URL out), keys (token once),
and resuming a rule's suspended actions."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from interlock.rules import Rule, notify, on, webhook
from interlock.rules.engine.firing import Firing
from interlock.rules.rule import dump_rules
from interlock.service.store import outbox_entries

from .conftest import Rig

RULE = Rule(
    name="job-failed",
    when=on("job.failed"),
    then=[notify("ops", title="failed"), webhook("http://127.0.0.1:9/hook")],
)
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def firing(key: str, at: datetime, rule: str = "job-failed") -> Firing:
    return Firing(
        id=uuid.uuid4(), rule=rule, key=key, status="fired", at=at, summary=f"{key} failed"
    )


async def store_firings(rig: Rig) -> list[Firing]:
    await rig.client.post("/api/rules", json=json.loads(dump_rules([RULE])))
    firings = [
        firing("a", T0),
        firing("b", T0 + timedelta(hours=1)),
        firing("a", T0 + timedelta(hours=2)),
        firing("z", T0 + timedelta(hours=3), rule="other"),
    ]
    entries = [entry for f in firings[:3] for entry in outbox_entries(f, RULE.then)]
    await rig.services.store.store_batch(firings, entries)
    return firings


async def test_list_firings_filters_newest_first(rig: Rig) -> None:
    firings = await store_firings(rig)
    every = (await rig.client.get("/api/firings")).json()
    assert [f["id"] for f in every] == [str(f.id) for f in reversed(firings)]
    of_rule = (await rig.client.get("/api/firings", params={"rule": "job-failed"})).json()
    assert len(of_rule) == 3
    by_key = await rig.client.get("/api/firings", params={"rule": "job-failed", "key": "a"})
    assert [f["key"] for f in by_key.json()] == ["a", "a"]
    window = await rig.client.get(
        "/api/firings",
        params={
            "since": (T0 + timedelta(hours=1)).isoformat(),
            "until": (T0 + timedelta(hours=3)).isoformat(),
        },
    )
    assert [f["at"] for f in window.json()] == [
        (T0 + timedelta(hours=2)).isoformat().replace("+00:00", "Z"),
        (T0 + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
    ]
    limited = (await rig.client.get("/api/firings", params={"limit": 1})).json()
    assert len(limited) == 1


async def test_bad_firing_queries_are_400(rig: Rig) -> None:
    assert (await rig.client.get("/api/firings", params={"limit": 0})).status_code == 400
    assert (await rig.client.get("/api/firings", params={"limit": 5000})).status_code == 400
    assert (await rig.client.get("/api/firings", params={"since": "yesterday"})).status_code == 400
    assert (await rig.client.get("/api/firings/not-a-uuid")).status_code in {400, 404}
    missing = await rig.client.get(f"/api/firings/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert "no firing" in missing.json()["detail"]


async def test_show_firing_with_its_actions(rig: Rig) -> None:
    firings = await store_firings(rig)
    shown = await rig.client.get(f"/api/firings/{firings[0].id}")
    assert shown.status_code == 200
    body = shown.json()
    assert body["firing"]["summary"] == "a failed"
    assert [(a["index"], a["kind"], a["state"]) for a in body["actions"]] == [
        (0, "notify", "pending"),
        (1, "webhook", "pending"),
    ]


async def test_resume_actions_closes_the_breaker(rig: Rig) -> None:
    firings = await store_firings(rig)
    suspended = await rig.services.store.outbox.suspend("job-failed", 1, reason="kept failing")
    assert suspended == 3
    shown = (await rig.client.get(f"/api/firings/{firings[0].id}")).json()
    assert [a["state"] for a in shown["actions"]] == ["pending", "suspended"]

    resumed = await rig.client.post("/api/rules/job-failed/actions/resume", params={"index": 1})
    assert resumed.status_code == 200
    assert resumed.json() == {"rule": "job-failed", "index": 1, "resumed": 3}
    shown = (await rig.client.get(f"/api/firings/{firings[0].id}")).json()
    assert [a["state"] for a in shown["actions"]] == ["pending", "pending"]
    again = await rig.client.post("/api/rules/job-failed/actions/resume")
    assert again.json() == {"rule": "job-failed", "index": None, "resumed": 0}


async def test_channels_never_show_their_url(rig: Rig) -> None:
    url = "slack://TokenA/TokenB/TokenC/#alerts"
    created = await rig.client.post("/api/channels", json={"name": "ops", "url": url})
    assert created.status_code == 201, created.text
    assert created.json()["url"] == "slack://***"
    assert "TokenA" not in created.text
    listed = await rig.client.get("/api/channels")
    assert [c["name"] for c in listed.json()] == ["ops"]
    assert "TokenA" not in listed.text
    # stored encrypted, readable by the dispatcher only
    assert await rig.services.store.channels.get_secret("ops") == url

    repointed = await rig.client.post(
        "/api/channels", json={"name": "ops", "url": "mailto://user:pw@example.com"}
    )
    assert repointed.json()["url"] == "mailto://***"
    assert (await rig.client.delete("/api/channels/ops")).status_code == 204
    assert (await rig.client.get("/api/channels")).json() == []
    gone = await rig.client.delete("/api/channels/ops")
    assert gone.status_code == 404


async def test_bad_channels_are_400_without_echoing_the_url(rig: Rig) -> None:
    secret = "not a url with password hunter2"
    bad_url = await rig.client.post("/api/channels", json={"name": "ops", "url": secret})
    assert bad_url.status_code == 400
    assert "Apprise URL" in bad_url.json()["detail"]
    assert "hunter2" not in bad_url.text
    bad_name = await rig.client.post(
        "/api/channels", json={"name": "no spaces", "url": "json://localhost/"}
    )
    assert bad_name.status_code == 400
    unknown = await rig.client.post(
        "/api/channels", json={"name": "ops", "url": "json://x/", "colour": "red"}
    )
    assert unknown.status_code == 400
    missing = await rig.client.post("/api/channels", json={"name": "ops"})
    assert missing.status_code == 400
    assert (await rig.client.get("/api/channels")).json() == []


async def test_channels_need_admin_to_change_and_read_to_list(rig: Rig) -> None:
    read = await rig.token("read")
    write = await rig.token("write")
    body = {"name": "ops", "url": "json://localhost/"}
    for token in (read, write):
        headers = {"Authorization": f"Bearer {token}"}
        assert (
            await rig.client.post("/api/channels", json=body, headers=headers)
        ).status_code == 403
        assert (await rig.client.delete("/api/channels/ops", headers=headers)).status_code == 403
    headers = {"Authorization": f"Bearer {read}"}
    assert (await rig.client.get("/api/channels", headers=headers)).status_code == 200


async def test_keys_token_shown_once_and_usable(rig: Rig) -> None:
    created = await rig.client.post("/api/keys", json={"name": "ci", "scopes": ["write"]})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert token.startswith("ilk_")
    assert created.json()["key"]["scopes"] == ["write"]
    # local mode is over: a key exists now
    assert (await rig.client.get("/api/keys")).status_code == 401
    headers = {"Authorization": f"Bearer {token}"}
    assert (await rig.client.get("/api/keys", headers=headers)).status_code == 403
    admin = await rig.admin_token()
    listed = await rig.client.get("/api/keys", headers={"Authorization": f"Bearer {admin}"})
    assert listed.status_code == 200
    assert sorted(k["name"] for k in listed.json()) == ["admin", "ci"]
    assert token not in listed.text
    assert admin not in listed.text
    assert "token" not in listed.text


async def test_bad_keys_are_400(rig: Rig) -> None:
    bad_scope = await rig.client.post("/api/keys", json={"name": "x", "scopes": ["root"]})
    assert bad_scope.status_code == 400
    no_scope = await rig.client.post("/api/keys", json={"name": "x", "scopes": []})
    assert no_scope.status_code == 400
    assert (await rig.client.post("/api/keys", json={"scopes": ["read"]})).status_code == 400
    # nothing was created: still local mode
    assert (await rig.client.get("/api/keys")).json() == []
