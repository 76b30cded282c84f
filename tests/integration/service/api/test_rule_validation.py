"""Rules the engine cannot run, and templates that cannot work, are refused at apply.

Finding 3 and 5 of issue 14: a rule the engine could not build was accepted and stopped
the server; ``{{ 9**(9**7) }}`` was computed by the validation itself (4 s of a frozen
event loop; a larger exponent, minutes). Both are 422 problems naming the field now.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from interlock.rules import Rule, absent, all_of, heartbeat, on, webhook

from .conftest import Rig, RigFactory


def document(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"schema_version": 1, "rules": list(rules)}


def rule_json(**fields: Any) -> dict[str, Any]:
    base = msgspec.to_builtins(Rule(name="r", when=on("job.done"), then=[webhook("http://h/")]))
    return {**base, **fields}


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ 9**(9**9) }}", "too costly to evaluate"),  # minutes of CPU if computed
        ("{{ 'a' * 10**12 }}", "too costly to evaluate"),
        ("{{ event.__class__.__mro__ }}", "is private"),
        ("{{ evnt.payload }}", "unknown name 'evnt'"),
        ("{{ 1/0 }}", "always fails"),
    ],
)
async def test_a_template_that_cannot_work_is_a_422_naming_its_field(
    rig: Rig, template: str, message: str
) -> None:
    action = {**msgspec.to_builtins(webhook("http://h/")), "body": {"x": template}}
    answer = await rig.client.post("/api/rules", json=document(rule_json(then=[action])))
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["problems"]
    assert problem["path"] == "then[0].body.x"
    assert message in problem["message"]
    assert (await rig.client.get("/api/health")).status_code == 200
    assert (await rig.client.get("/api/rules")).json() == []


async def test_a_compound_holding_an_absence_is_a_422_naming_its_part(rig: Rig) -> None:
    when = all_of("job.a.done", "job.b.done", within="6h")
    parts = [
        *msgspec.to_builtins(when)["triggers"],
        msgspec.to_builtins(absent("job.c.done", by=heartbeat("10m"))),
    ]
    answer = await rig.client.post(
        "/api/rules",
        json=document(rule_json(when={**msgspec.to_builtins(when), "triggers": parts})),
    )
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["problems"]
    assert problem["path"] == "when.triggers[2]"
    assert "an absence cannot be part of a compound trigger" in problem["message"]


async def test_a_webhook_whose_destination_a_publisher_chooses_is_refused(
    rig: Rig, make_rig: RigFactory
) -> None:
    # Finding 9: whoever publishes the event would pick where Interlock sends requests.
    action = msgspec.to_builtins(webhook("{{ event.payload.url }}"))
    answer = await rig.client.post("/api/rules", json=document(rule_json(then=[action])))
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["problems"]
    assert problem["path"] == "then[0].url"
    assert "allowed_destinations" in problem["message"] + problem.get("hint", "")
    checked = await rig.client.post("/api/rules/check", json=document(rule_json(then=[action])))
    assert checked.status_code == 422
    templated_host = msgspec.to_builtins(webhook("https://{{ key }}.hooks.example.com/x"))
    allowing = await make_rig(actions={"webhooks": {"allowed_destinations": ["*.example.com"]}})
    accepted = await allowing.client.post(
        "/api/rules", json=document(rule_json(then=[templated_host]))
    )
    assert accepted.status_code == 200, accepted.text
