"""Interlock watching itself: failing actions page the platform team and pause the rule."""

from interlock.rules import Rule, notify, on, pause_rule, resource, resume_rule

backfill_keeps_failing = Rule(
    name="backfill-keeps-failing",
    description="The sales backfill's deployment failing twice in a day pauses the SLA rule.",
    when=on(
        "interlock.run.failed",
        where=resource.id == "backfill-sales",
        at_least=2,
        within="1d",
    ),
    then=[
        pause_rule("sales-table-by-0900"),
        notify("platform-oncall", title="backfill-sales failed twice; sales SLA paused"),
    ],
)

backfill_recovered = Rule(
    name="backfill-recovered",
    when=on("interlock.run.completed", where=resource.id == "backfill-sales"),
    then=[resume_rule("sales-table-by-0900")],
)
