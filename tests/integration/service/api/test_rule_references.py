"""References checked at apply: a rule naming a deployment, queue, channel or rule the
service does not hold is applied with a warning (in dry runs too, and from
``POST /api/rules/check``, which changes nothing); rules of the same batch count as
existing; with everything created, the same rules get no warning."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from interlock.rules import (
    Rule,
    approve,
    notify,
    on,
    pause_queue,
    pause_rule,
    pause_schedule,
    resume_rule,
    run_deployment,
    webhook,
)
from interlock.rules.rule import dump_rules
from interlock.service.context import Services

from .conftest import Rig

CHANNEL_URL = "json://127.0.0.1:9/hook"

NAMING = Rule(
    name="sales-late",
    when=on("sla.missed"),
    owner="data-owners",
    then=[
        notify("data-team", title="late"),
        run_deployment("backfill-sales"),
        pause_queue("etl"),
        approve("approvers"),
        pause_rule("reports-nightly"),
        run_deployment("{{ event.payload.deployment }}"),  # known only when it fires
        webhook("http://127.0.0.1:9/hook"),  # names nothing the service holds
        resume_rule("sales-watch"),  # applied in the same batch
    ],
    on_resolved=[pause_schedule("backfill-sales")],
)
WATCH = Rule(name="sales-watch", when=on("db.table.updated"), then=[notify(CHANNEL_URL)])

EXPECTED = [
    ("owner", "channel 'data-owners' does not exist (yet)"),
    ("then[0].channel", "channel 'data-team' does not exist (yet)"),
    ("then[1].deployment", "deployment 'backfill-sales' does not exist (yet)"),
    ("then[2].queue", "queue 'etl' does not exist (yet)"),
    ("then[3].channel", "channel 'approvers' does not exist (yet)"),
    ("then[4].rule", "rule 'reports-nightly' does not exist (yet)"),
    ("on_resolved[0].deployment", "deployment 'backfill-sales' does not exist (yet)"),
]


def document(*rules: Rule) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dump_rules(rules))
    return data


def found(warnings: list[dict[str, Any]]) -> list[tuple[str, str]]:
    assert {w["rule"] for w in warnings} <= {"sales-late"}
    return [(w["path"], w["message"]) for w in warnings]


async def create_everything(services: Services) -> None:
    """Create what ``NAMING`` names (the rule it pauses through the API's apply)."""
    store = services.store
    for channel in ("data-owners", "data-team", "approvers"):
        await store.channels.put(channel, CHANNEL_URL)
    await store.queues.create("etl")
    await store.deployments.create(
        "backfill-sales", target={"type": "process", "command": ["true"]}, queue="etl"
    )


async def test_apply_warns_about_every_missing_name_and_applies_anyway(rig: Rig) -> None:
    planned = await rig.client.post(
        "/api/rules", params={"dry_run": "true"}, json=document(NAMING, WATCH)
    )
    assert planned.status_code == 200, planned.text
    assert found(planned.json()["warnings"]) == EXPECTED
    assert (await rig.client.get("/api/rules")).json() == []  # a dry run applies nothing

    applied = await rig.client.post("/api/rules", json=document(NAMING, WATCH))
    assert applied.status_code == 200, applied.text
    body = applied.json()
    assert [c["change"] for c in body["changes"]] == ["created", "created"]
    assert found(body["warnings"]) == EXPECTED
    hints = {w["path"]: w["hint"] for w in body["warnings"]}
    assert "interlock deployments create backfill-sales" in hints["then[1].deployment"]
    assert "config/deployments.toml" in hints["then[1].deployment"]
    assert "interlock channels add data-team URL" in hints["then[0].channel"]
    assert "interlock queues create etl" in hints["then[2].queue"]
    assert "nobody is told" in hints["owner"]
    listed = (await rig.client.get("/api/rules")).json()
    assert [r["name"] for r in listed] == ["sales-late", "sales-watch"]  # applied anyway


async def test_a_rule_applied_earlier_counts_and_so_do_the_batchs_own(rig: Rig) -> None:
    alone = await rig.client.post("/api/rules", json=document(NAMING))
    assert ("then[7].rule", "rule 'sales-watch' does not exist (yet)") in found(
        alone.json()["warnings"]
    )
    await rig.client.post("/api/rules", json=document(WATCH))
    again = await rig.client.post("/api/rules", json=document(NAMING))
    assert found(again.json()["warnings"]) == EXPECTED


async def test_with_everything_created_the_same_rules_get_no_warning(rig: Rig) -> None:
    await create_everything(rig.services)
    reports = Rule(name="reports-nightly", when=on("x.y"), then=[notify(CHANNEL_URL)])
    assert (await rig.client.post("/api/rules", json=document(reports))).json()["warnings"] == []
    applied = await rig.client.post("/api/rules", json=document(NAMING, WATCH))
    assert applied.status_code == 200, applied.text
    assert applied.json()["warnings"] == []
    checked = await rig.client.post("/api/rules/check", json=document(NAMING, WATCH))
    assert checked.json() == {"rules": ["sales-late", "sales-watch"], "warnings": []}


async def test_check_answers_the_warnings_with_a_read_key_and_applies_nothing(rig: Rig) -> None:
    token = await rig.token("read")
    headers = {"Authorization": f"Bearer {token}"}
    checked = await rig.client.post(
        "/api/rules/check", json=document(NAMING, WATCH), headers=headers
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["rules"] == ["sales-late", "sales-watch"]
    assert found(checked.json()["warnings"]) == EXPECTED
    assert (await rig.client.get("/api/rules", headers=headers)).json() == []
    refused = await rig.client.post("/api/rules", json=document(NAMING), headers=headers)
    assert refused.status_code == 403  # applying still needs write

    bad = document(WATCH)
    bad["rules"][0]["name"] = "Bad Name!"
    invalid = await rig.client.post("/api/rules/check", json=bad, headers=headers)
    assert invalid.status_code == 422
    assert invalid.json()["problems"][0]["path"] == "name"


async def test_a_stored_rule_that_no_longer_reads_still_exists(rig: Rig) -> None:
    reports = Rule(name="reports-nightly", when=on("x.y"), then=[notify(CHANNEL_URL)])
    await rig.client.post("/api/rules", json=document(reports))
    unreadable = '{"schema_version": 1, "rules": [{"name": "reports-nightly", "when": 1}]}'
    engine = sa.create_engine(rig.services.settings.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE rule_versions SET document = :document"),
                {"document": unreadable},
            )
    finally:
        engine.dispose()
    applied = await rig.client.post("/api/rules", json=document(NAMING, WATCH))
    assert applied.status_code == 200, applied.text
    paths = [path for path, _ in found(applied.json()["warnings"])]
    assert "then[4].rule" not in paths  # quarantined, but there: pausing it is no typo


async def test_a_deployment_whose_target_connection_is_missing_is_a_warning(rig: Rig) -> None:
    # As config/deployments.toml declares it: the store takes it without the API's checks.
    await rig.services.store.deployments.create(
        "on-airflow",
        target={"type": "airflow", "connection": "gone-airflow", "dag_id": "sales"},
        queue=(await rig.services.store.queues.create("etl")).name,
    )
    rule = Rule(name="starts-it", when=on("x.y"), then=[run_deployment("on-airflow")])
    applied = await rig.client.post("/api/rules", json=document(rule))
    assert applied.status_code == 200, applied.text
    (warning,) = applied.json()["warnings"]
    assert (warning["rule"], warning["path"], warning["message"]) == (
        "starts-it",
        "then[0].deployment",
        "deployment 'on-airflow' runs on connection 'gone-airflow', which does not exist (yet)",
    )
    assert "interlock connections add gone-airflow" in warning["hint"]
    assert "interlock deployments set-target on-airflow" in warning["hint"]
    fields = {"url": "http://127.0.0.1:9", "token": "t"}
    await rig.services.store.connections.put("gone-airflow", "airflow", fields)
    again = await rig.client.post("/api/rules", json=document(rule))
    assert again.json()["warnings"] == []
