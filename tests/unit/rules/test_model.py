"""The rule model: DSL → JSON → model gives an equal rule; problems are collected with paths."""

from __future__ import annotations

import json

import pytest

from interlock.rules import (
    Rule,
    RuleDefinitionError,
    absent,
    after,
    all_of,
    any_of,
    at_least,
    cron,
    deadline,
    dump_rules,
    emit,
    heartbeat,
    load_rules,
    notify,
    on,
    pause_queue,
    pause_rule,
    payload,
    related,
    resource,
    resume_queue,
    resume_rule,
    run_deployment,
    sequence,
    webhook,
    workdays,
)

TABLES = [f"warehouse.t{n:02d}" for n in range(12)]


def every_kind() -> list[Rule]:
    return [
        Rule(
            name="failed-dags",
            when=on("airflow.dag_run.failed", where=resource.team == "finance"),
            then=[notify("data-team-slack", title="{{ event.resource.id }} failed")],
            tags=["airflow"],
            owner="platform-oncall",
        ),
        Rule(
            name="many-failures",
            when=on(
                "airflow.task_instance.failed", at_least=3, within="1h", for_each="resource.id"
            ),
            then=[pause_queue("etl"), webhook("https://hooks.example/x", body={"k": "{{ key }}"})],
            on_resolved=[resume_queue("etl")],
        ),
        Rule(
            name="sales-table-by-0900",
            when=absent(
                "db.table.updated",
                where=resource.id == "warehouse.sales",
                by=deadline("09:00", tz="Europe/Berlin", days=workdays(), holidays=["2026-12-25"]),
            ),
            then=[
                notify("data-team-slack", title="Sales table not refreshed by 09:00"),
                run_deployment("backfill-sales", parameters={"date": "{{ window.start.date() }}"}),
            ],
            on_resolved=[notify("data-team-slack", title="Sales table arrived late")],
            description="The morning report reads warehouse.sales at 09:15.",
        ),
        Rule(
            name="job-finishes-within-2h",
            when=absent(
                "job.finished",
                by=after("job.started", within="2h"),
                for_each="payload.run_id",
            ),
            then=[emit("job.overdue", "{{ key }}", payload={"rule": "{{ rule.name }}"})],
        ),
        Rule(
            name="worker-heartbeat",
            when=absent("worker.heartbeat", by=heartbeat("10m"), for_each="resource.id"),
            then=[notify("mailto://oncall@example.com")],
        ),
        Rule(
            name="three-files-by-0700",
            when=absent(
                "s3.object.created",
                where=payload.key.startswith("landing/"),
                by=cron("0 7 * * *", tz="America/New_York"),
                at_least=3,
            ),
            then=[pause_rule("reports-when-inputs-landed")],
        ),
        Rule(
            name="twelve-tables-by-0900",
            when=absent(
                "db.table.updated",
                by=deadline("09:00", tz="Europe/Berlin"),
                for_each="resource.id",
                keys=TABLES,
                grace="5m",
            ),
            then=[notify("data-team-slack", title="{{ key }} missing")],
        ),
        Rule(
            name="reports-when-inputs-landed",
            when=all_of(
                on("db.table.updated", where=resource.id == "warehouse.sales"),
                on("s3.object.created", where=payload.key.glob("exports/fx/*.csv")),
                within="2h",
            ),
            then=[run_deployment("build-reports"), resume_rule("three-files-by-0700")],
        ),
        Rule(
            name="either-source",
            when=any_of("crm.export.done", "erp.export.done", within="1d"),
            then=[run_deployment("merge")],
        ),
        Rule(
            name="two-of-three",
            when=at_least(2, "a.done", "b.done", "c.done", within="30m", for_each="payload.day"),
            then=[run_deployment("partial")],
        ),
        Rule(
            name="extract-load-transform",
            when=sequence(
                "etl.extract.done",
                "etl.load.done",
                on("etl.transform.done"),
                within="3h",
                for_each="payload.batch",
            ),
            then=[notify("json://127.0.0.1:9/x")],
        ),
        Rule(
            name="tagged-finance-and-daily",
            when=on(
                "dataset.published",
                where=related(role="tag", id="finance") & related(role="tag", id="daily"),
            ),
            then=[run_deployment("finance-daily")],
            enabled=False,
        ),
    ]


def test_dsl_to_json_to_model_gives_equal_rules() -> None:
    rules = every_kind()
    document = dump_rules(rules)
    assert json.loads(document)["schema_version"] == 1
    assert load_rules(document) == rules
    assert dump_rules(load_rules(document)) == document  # deterministic


def issues_of(error: RuleDefinitionError) -> list[tuple[str, str]]:
    return [(issue.path, issue.message) for issue in error.issues]


def test_problems_are_collected_with_rule_name_path_and_hint() -> None:
    with pytest.raises(RuleDefinitionError) as caught:
        Rule(
            name="sales-sla",
            when=on("db..table", at_least=0, within="2x", for_each="color"),
            then=[notify("x", title="{{ oops"), webhook("ftp://x", method="FETCH")],
        )
    text = str(caught.value)
    assert "rule 'sales-sla': when.within: '2x' is not a duration (use e.g. '90s'" in text
    paths = [path for path, _ in issues_of(caught.value)]
    assert paths == [
        "when.match.names[0]",
        "when.threshold",
        "when.within",
        "when.for_each[0]",
        "then[0].title",
        "then[1].url",
        "then[1].method",
    ]


@pytest.mark.parametrize(
    ("when", "path", "message"),
    [
        (on(">"), "when.match", "matches every event"),
        (absent("a.b", by=deadline("25:00")), "when.window.at", "'25:00'"),
        (absent("a.b", by=deadline("09:00", tz="Mars/Olympus")), "when.window.at", "Mars/Olympus"),
        (absent("a.b", by=cron("0 9 * *")), "when.window.cron", "5 fields"),
        (absent("a.b", by=heartbeat("0s")), "when.window.every", "longer than zero"),
        (absent("a.b", by=heartbeat("1m"), keys=["x"]), "when.keys", "need for_each"),
        (all_of("a.b", within="1h"), "when.triggers", "at least two"),
        (at_least(3, "a.b", "c.d", within="1h"), "when.require", "between 1 and 2"),
        (sequence("a.b", within="1h"), "when.steps", "at least two"),
        (on("a.b", where=payload.x.matches("(")), "when.match.where.pattern", "regular expression"),
        (on("a.b", at_least=2), "when.within", "needs a window"),
        (on("a.>.c"), "when.match.names[0]", "'>' may only be the last token"),
    ],
)
def test_invalid_triggers(when: object, path: str, message: str) -> None:
    with pytest.raises(RuleDefinitionError) as caught:
        Rule(name="r", when=when)  # type: ignore[arg-type]
    assert any(p == path and message in m for p, m in issues_of(caught.value)), caught.value


@pytest.mark.parametrize(
    ("rule_args", "loops"),
    [
        ({"when": on("interlock.rule.fired"), "then": [notify("x")]}, True),
        ({"when": on("interlock.rule.fired", where=resource.id == "other"), "then": []}, False),
        (
            {"when": on("interlock.action.failed", where=payload.x == 1), "then": [notify("x")]},
            True,
        ),
        (
            {
                "when": on("interlock.run.*", where=resource.id == "backfill"),
                "then": [run_deployment("backfill")],
            },
            True,
        ),
        (
            {
                "when": on("interlock.run.*", where=resource.id == "other"),
                "then": [run_deployment("backfill")],
            },
            False,
        ),
        ({"when": on("job.retry"), "then": [emit("job.retry", "x")]}, True),
        ({"when": absent("x.y", by=after("interlock.rule.fired", within="1h"))}, True),
    ],
)
def test_rules_that_would_retrigger_themselves_are_refused(
    rule_args: dict[str, object], loops: bool
) -> None:
    if loops:
        with pytest.raises(RuleDefinitionError, match="re-trigger itself"):
            Rule(name="me", **rule_args)  # type: ignore[arg-type]
        Rule(name="me", allow_loop=True, **rule_args)  # type: ignore[arg-type]
    else:
        Rule(name="me", **rule_args)  # type: ignore[arg-type]


def test_loading_reports_every_invalid_rule_and_duplicates() -> None:
    document = json.loads(dump_rules(every_kind()[:2]))
    document["rules"].append(dict(document["rules"][0]))
    document["rules"][1]["when"]["within"] = "soon"
    with pytest.raises(RuleDefinitionError) as caught:
        load_rules(json.dumps(document))
    messages = [str(issue) for issue in caught.value.issues]
    assert any("many-failures" in m and "when.within" in m for m in messages)
    assert any("failed-dags" in m and "used by another rule" in m for m in messages)


def test_unknown_schema_version_is_refused() -> None:
    with pytest.raises(RuleDefinitionError, match="unsupported schema version 99"):
        load_rules('{"schema_version": 99, "rules": []}')


def test_call_names_an_adapter_executor_and_is_validated() -> None:
    from interlock.rules import call  # noqa: PLC0415
    from interlock.rules.describe import describe_action  # noqa: PLC0415

    action = call("airflow_trigger_dag", dag_id="load_sales", conf={"day": "{{ key }}"})
    rule = Rule(name="bridge", when=on("s3.object.created"), then=[action])
    assert load_rules(dump_rules([rule])) == [rule]
    assert describe_action(action) == (
        "call airflow_trigger_dag(dag_id='load_sales', conf={'day': '{{ key }}'})"
    )
    with pytest.raises(RuleDefinitionError) as caught:
        Rule(
            name="bad",
            when=on("s3.object.created"),
            then=[call("Airflow-Trigger", kind="x", conf="{{ oops")],
        )
    assert [path for path, _ in issues_of(caught.value)] == [
        "then[0].executor",
        "then[0].params",
        "then[0].params.conf",
    ]
