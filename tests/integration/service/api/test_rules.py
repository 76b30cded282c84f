"""``/api/rules``: apply (with a dry run), list, show, pause, resume, delete, versions."""

from __future__ import annotations

import json
from typing import Any

from interlock.rules import Rule, absent, deadline, notify, on, payload
from interlock.rules.rule import dump_rules

from .conftest import Rig

FAILED = Rule(
    name="job-failed",
    description="a job failed twice",
    tags=["jobs"],
    when=on("job.failed", where=payload.attempt >= 2),
    then=[notify("ops", title="{{ event.resource.id }} failed")],
)
SALES = Rule(
    name="sales-by-0900",
    when=absent(
        "db.table.updated",
        where=payload.table == "sales",
        by=deadline("09:00", tz="Europe/Berlin"),
    ),
    then=[notify("ops", title="sales late")],
)


def document(*rules: Rule) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dump_rules(rules))
    return data


def rule_json(rule: Rule) -> dict[str, Any]:
    data: dict[str, Any] = document(rule)["rules"][0]
    return data


async def test_apply_list_show(rig: Rig) -> None:
    applied = await rig.client.post("/api/rules", json=document(FAILED, SALES))
    assert applied.status_code == 200, applied.text
    assert applied.json() == {
        "dry_run": False,
        "changes": [
            {"name": "job-failed", "change": "created", "version": 1, "diff": []},
            {"name": "sales-by-0900", "change": "created", "version": 1, "diff": []},
        ],
        "warnings": [  # the channel they name does not exist: applied all the same
            {
                "rule": rule,
                "path": "then[0].channel",
                "message": "channel 'ops' does not exist (yet)",
                "hint": "add it with `interlock channels add ops URL`; until then this "
                "notification is not sent when the rule fires",
            }
            for rule in ("job-failed", "sales-by-0900")
        ],
    }
    listed = (await rig.client.get("/api/rules")).json()
    assert [r["name"] for r in listed] == ["job-failed", "sales-by-0900"]
    failed, sales = listed
    assert failed["paused"] is False
    assert failed["enabled"] is True
    assert failed["loaded"] is True
    assert failed["version"] == 1
    assert failed["trigger"] == "event"
    assert failed["tags"] == ["jobs"]
    assert failed["next_deadlines"] == []
    assert len(sales["next_deadlines"]) == 3  # a calendar absence: its next deadlines

    shown = (await rig.client.get("/api/rules/job-failed")).json()
    assert shown["rule"] == rule_json(FAILED)
    assert shown["version"] == 1
    assert shown["status"]["loaded"] is True
    assert shown["status"]["enabled"] is True


async def test_rule_in_every_accepted_shape(rig: Rig) -> None:
    one = await rig.client.post("/api/rules", json=rule_json(FAILED))
    assert one.status_code == 200
    assert one.json()["changes"][0]["change"] == "created"
    listed = await rig.client.post("/api/rules", json=[rule_json(FAILED), rule_json(SALES)])
    assert [c["change"] for c in listed.json()["changes"]] == ["unchanged", "created"]


async def test_dry_run_plans_a_field_level_diff_and_changes_nothing(rig: Rig) -> None:
    await rig.client.post("/api/rules", json=document(FAILED))
    changed = rule_json(FAILED)
    changed["description"] = "a job failed three times"
    changed["when"]["match"]["where"]["value"] = 3
    plan = await rig.client.post(
        "/api/rules", params={"dry_run": "true"}, json=[changed, rule_json(SALES)]
    )
    assert plan.status_code == 200
    body = plan.json()
    assert body["dry_run"] is True
    updated, created = body["changes"]
    assert updated["change"] == "updated"
    assert updated["version"] == 1
    assert sorted(updated["diff"], key=lambda d: d["path"]) == [
        {
            "path": "description",
            "before": "a job failed twice",
            "after": "a job failed three times",
        },
        {"path": "when.match.where.value", "before": 2, "after": 3},
    ]
    assert created == {"name": "sales-by-0900", "change": "created", "version": None, "diff": []}
    # nothing applied
    assert (await rig.client.get("/api/rules/sales-by-0900")).status_code == 404
    assert (await rig.client.get("/api/rules/job-failed")).json()["rule"] == rule_json(FAILED)

    applied = await rig.client.post("/api/rules", json=[changed])
    assert applied.json()["changes"][0]["change"] == "updated"
    assert applied.json()["changes"][0]["version"] == 2
    versions = (await rig.client.get("/api/rules/job-failed/versions")).json()
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["rule"] == rule_json(FAILED)
    assert versions[1]["rule"]["description"] == "a job failed three times"


async def test_invalid_rules_are_422_listing_every_problem_and_nothing_applied(
    rig: Rig,
) -> None:
    bad = rule_json(FAILED)
    bad["name"] = "Bad Name!"
    bad["when"]["within"] = "soon"
    worse = rule_json(SALES)
    worse["when"]["window"]["tz"] = "Mars/Olympus"
    response = await rig.client.post("/api/rules", json=[rule_json(SALES), bad, worse])
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert len(problems) >= 3
    paths = {(p["rule"], p["path"]) for p in problems}
    assert ("Bad Name!", "name") in paths
    assert any(p["path"].startswith("when") and "soon" in p["message"] for p in problems)
    assert any(p["rule"] == "sales-by-0900" for p in problems)
    assert "problems in the rules" in response.json()["detail"]
    assert (await rig.client.get("/api/rules")).json() == []
    ok = await rig.client.post("/api/rules", json=[rule_json(SALES)])
    assert ok.status_code == 200


async def test_malformed_rule_bodies(rig: Rig) -> None:
    not_json = await rig.client.post(
        "/api/rules", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422
    assert "not valid JSON" in not_json.json()["detail"]
    wrong_type = await rig.client.post("/api/rules", json={**rule_json(FAILED), "then": "x"})
    assert wrong_type.status_code == 422
    assert "then" in not_json.text + wrong_type.text
    unknown = await rig.client.post("/api/rules", json={**rule_json(FAILED), "colour": 1})
    assert unknown.status_code == 422
    assert "colour" in unknown.text
    version = await rig.client.post(
        "/api/rules", json={"schema_version": 9, "rules": [rule_json(FAILED)]}
    )
    assert version.status_code == 422
    assert "schema version" in version.text
    empty = await rig.client.post("/api/rules", json=[])
    assert empty.status_code == 422
    scalar = await rig.client.post("/api/rules", json=5)
    assert scalar.status_code == 422
    duplicate = await rig.client.post("/api/rules", json=[rule_json(FAILED), rule_json(FAILED)])
    assert duplicate.status_code == 422
    assert "used by another rule" in duplicate.text


async def test_pause_resume_delete(rig: Rig) -> None:
    await rig.client.post("/api/rules", json=document(FAILED))
    paused = await rig.client.post("/api/rules/job-failed/pause")
    assert paused.status_code == 200
    assert paused.json()["paused"] is True
    assert paused.json()["enabled"] is False
    status = (await rig.client.get("/api/rules/job-failed")).json()["status"]
    assert status["loaded"] is True
    assert status["enabled"] is False
    assert rig.services.rules.status("job-failed").enabled is False  # the engine too

    resumed = await rig.client.post("/api/rules/job-failed/resume")
    assert resumed.json()["paused"] is False
    assert rig.services.rules.status("job-failed").enabled is True

    deleted = await rig.client.delete("/api/rules/job-failed")
    assert deleted.status_code == 204
    assert rig.services.rules.status("job-failed").loaded is False
    assert (await rig.client.get("/api/rules/job-failed")).status_code == 404


async def test_unknown_rule_is_404_everywhere(rig: Rig) -> None:
    for method, path in [
        ("GET", "/api/rules/nope"),
        ("GET", "/api/rules/nope/versions"),
        ("POST", "/api/rules/nope/pause"),
        ("POST", "/api/rules/nope/resume"),
        ("DELETE", "/api/rules/nope"),
        ("POST", "/api/rules/nope/actions/resume"),
    ]:
        response = await rig.client.request(method, path)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json() == {
            "type": "about:blank",
            "title": "Not Found",
            "status": 404,
            "detail": "no rule 'nope'",
            "status_code": 404,
        }


async def test_delete_needs_admin_and_pause_needs_write(rig: Rig) -> None:
    await rig.client.post("/api/rules", json=document(FAILED))
    write = await rig.token("write")
    read = await rig.token("read")
    headers = {"Authorization": f"Bearer {write}"}
    assert (await rig.client.delete("/api/rules/job-failed", headers=headers)).status_code == 403
    read_headers = {"Authorization": f"Bearer {read}"}
    pause = await rig.client.post("/api/rules/job-failed/pause", headers=read_headers)
    assert pause.status_code == 403
    assert (
        await rig.client.post("/api/rules/job-failed/pause", headers=headers)
    ).status_code == 200
    assert (await rig.client.get("/api/rules", headers=read_headers)).status_code == 200


async def test_resume_actions_validates_the_index(rig: Rig) -> None:
    await rig.client.post("/api/rules", json=document(FAILED))
    bad = await rig.client.post("/api/rules/job-failed/actions/resume", params={"index": "-1"})
    assert bad.status_code == 400
