"""What an event satisfies and what waits downstream of a missed SLA, from definitions."""

from __future__ import annotations

from interlock.rules import (
    Rule,
    absent,
    after,
    all_of,
    deadline,
    heartbeat,
    on,
    payload,
    resource,
    run_deployment,
    sequence,
)
from interlock.sdk.event import Event
from interlock.service.ui.lineage import downstream, rules_matching

SALES = Event(event="db.table.updated", resource={"id": "warehouse.sales"}, payload={"rows": 5})


def test_rules_matching_tests_names_and_predicates_of_every_condition() -> None:
    rules = [
        Rule(name="each", when=on("db.table.*")),
        Rule(name="other-name", when=on("s3.object.created")),
        Rule(name="sales-only", when=on("db.>", where=resource.id == "warehouse.sales")),
        Rule(name="big", when=on("db.table.updated", where=payload.rows > 100)),
        Rule(
            name="sla",
            when=absent("db.table.updated", by=deadline("09:00"), for_each="resource.id"),
        ),
        Rule(
            name="opened",
            when=absent("job.done", by=after("db.table.updated", within="1h")),
        ),
        Rule(name="both", when=all_of(on("a.b"), on("db.table.updated"), within="1h")),
        Rule(name="steps", when=sequence("x.y", "db.table.updated", within="1h")),
    ]
    assert rules_matching(rules, SALES) == ["both", "each", "opened", "sales-only", "sla", "steps"]


def test_downstream_of_a_miss_lists_the_rules_waiting_and_their_deployments() -> None:
    missed = Rule(
        name="sales-by-9",
        when=absent("db.table.updated", by=deadline("09:00"), for_each="resource.id"),
        then=[run_deployment("backfill-sales")],
    )
    rules = {
        rule.name: rule
        for rule in [
            missed,
            Rule(
                name="reports",
                when=on("db.table.updated", where=resource.id == "warehouse.sales"),
                then=[run_deployment("build-reports")],
            ),
            Rule(
                name="any-table",
                when=on("db.>"),
                then=[run_deployment("refresh-cache")],
            ),
            Rule(
                name="other-table",
                when=on("db.table.updated", where=resource.id == "warehouse.fx"),
                then=[run_deployment("fx")],
            ),
            Rule(name="unrelated", when=on("s3.object.created")),
        ]
    }
    found = downstream(missed, "warehouse.sales", rules)
    assert found is not None
    assert found.resource == "warehouse.sales"
    assert found.rules == ("any-table", "reports")
    assert found.deployments == (
        ("backfill-sales", "sales-by-9"),
        ("refresh-cache", "any-table"),
        ("build-reports", "reports"),
    )


def test_downstream_reads_the_resource_from_the_expected_events_predicate() -> None:
    missed = Rule(
        name="beat",
        when=absent("job.ping", where=resource.id == "etl", by=heartbeat("10m")),
    )
    waiting = Rule(name="after-ping", when=on("job.*", where=resource.id == "etl"))
    found = downstream(missed, "", {"beat": missed, "after-ping": waiting})
    assert found is not None
    assert (found.resource, found.rules) == ("etl", ("after-ping",))
    assert downstream(waiting, "", {}) is None  # not an absence
