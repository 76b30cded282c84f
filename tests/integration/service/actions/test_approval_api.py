"""The approvals API: listing without tokens, deciding by firing (write scope) and by
the link's token (no key), and a second decision refused."""

from __future__ import annotations

from pathlib import Path

import httpx

from integration.service.actions.dispatch_fixtures import (
    all_in,
    dispatching,
    eventually,
    make_rule,
    queue,
    running_services,
    states,
)
from integration.service.actions.receiver import Receiver
from interlock.rules import approve, webhook
from interlock.service.api.app import create_app


async def test_decide_by_link_and_by_firing(
    database_url: str, streams: str, tmp_path: Path
) -> None:
    async with (
        Receiver() as receiver,
        running_services(database_url, streams, tmp_path / "spool") as services,
    ):
        app = create_app(services)
        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
        ask = f"json://127.0.0.1:{receiver.port}/ask"
        by_link = make_rule(
            "by-link", [approve(ask, title="Go?"), webhook(f"{receiver.url}/then-a")]
        )
        by_api = make_rule("by-api", [approve(ask), webhook(f"{receiver.url}/then-b")])
        await queue(services, by_link)
        (firing,) = await queue(services, by_api)
        async with api, dispatching(services):
            for name in ("by-link", "by-api"):
                await eventually(lambda n=name: _held(services, n))
            listed = (await api.get("/api/approvals")).json()
            assert sorted(a["rule"] for a in listed) == ["by-api", "by-link"]
            assert all("token" not in a for a in listed)

            (link_approval,) = await services.store.approvals.list(rule="by-link")
            link = f"/api/approvals/{link_approval.token}/approve"
            # Opening the link (a person, or a chat app's preview) decides nothing.
            for _ in range(2):
                page = await api.get(link)
                assert page.status_code == 200
                assert page.headers["content-type"].startswith("text/html")
                assert "Rule by-link asks: Go?" in page.text
                assert '<form method="post">' in page.text
            assert await states(services, "by-link") == ["waiting", "held"]
            decided = await api.post(link, data={"by": "ana <ops>", "reason": "looks fine"})
            assert decided.status_code == 200, decided.text
            assert "Approved: Go?" in decided.text
            assert "By ana &lt;ops&gt;." in decided.text  # escaped
            await eventually(lambda: all_in(services, "by-link", "succeeded"))
            (approved,) = await services.store.approvals.list(rule="by-link", pending=False)
            assert (approved.decided_by, approved.reason) == ("ana <ops>", "looks fine")
            reject_link = f"/api/approvals/{link_approval.token}/reject"
            for again in (await api.get(reject_link), await api.post(reject_link)):
                assert again.status_code == 409
                assert "was approved by ana &lt;ops&gt;" in again.text
            for method in (api.get, api.post):
                assert (await method("/api/approvals/not-a-token/approve")).status_code == 404

            rejected = await api.post(
                f"/api/firings/{firing.id}/reject", json={"by": "ana", "reason": "not today"}
            )
            assert rejected.status_code == 200, rejected.text
            body = rejected.json()
            assert (body["decision"], body["decided_by"], body["reason"]) == (
                "rejected",
                "ana",
                "not today",
            )
            assert "token" not in body
            await eventually(lambda: all_in(services, "by-api", "cancelled"))
            # Nothing pending any more for that firing: deciding again says who decided.
            again = await api.post(f"/api/firings/{firing.id}/approve")
            assert again.status_code == 409
            assert "was rejected by ana" in again.json()["detail"]

            read_key = await services.store.api_keys.create("reader", ["read"])
            headers = {"Authorization": f"Bearer {read_key.token}"}
            refused = await api.post(f"/api/firings/{firing.id}/approve", headers=headers)
            assert refused.status_code == 403
            assert (await api.get("/api/approvals", headers=headers)).json() == []
        assert len(receiver.paths("/then-a")) == 1
        assert receiver.paths("/then-b") == []


async def _held(services: object, rule: str) -> bool:
    return await states(services, rule) == ["waiting", "held"]  # type: ignore[arg-type]
