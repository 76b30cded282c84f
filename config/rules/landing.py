"""Files landing in S3 and tables refreshing: counts, declared keys, compound readiness."""

from interlock.rules import (
    Rule,
    absent,
    all_of,
    at_least,
    cron,
    deadline,
    emit,
    notify,
    on,
    payload,
    resource,
    run_deployment,
)

WAREHOUSE_TABLES = [
    "warehouse.sales",
    "warehouse.fx",
    "warehouse.customers",
    "warehouse.orders",
    "warehouse.items",
    "warehouse.stores",
    "warehouse.returns",
    "warehouse.payments",
    "warehouse.shipments",
    "warehouse.stock",
    "warehouse.prices",
    "warehouse.promotions",
]

three_landing_files = Rule(
    name="three-landing-files-by-0700",
    when=absent(
        "s3.object.created",
        where=payload.key.startswith("landing/"),
        by=cron("0 7 * * *", tz="America/New_York"),
        at_least=3,
    ),
    then=[notify("data-team-slack", title="Only {{ arrived }} of 3 landing files by 07:00")],
)

every_table_by_0900 = Rule(
    name="every-table-by-0900",
    when=absent(
        "db.table.updated",
        by=deadline("09:00", tz="Europe/Berlin"),
        for_each="resource.id",
        keys=WAREHOUSE_TABLES,
    ),
    then=[notify("data-team-slack", title="{{ key }} was not refreshed by 09:00")],
)

reports_when_inputs_landed = Rule(
    name="reports-when-inputs-landed",
    when=all_of(
        on("db.table.updated", where=resource.id == "warehouse.sales"),
        on("s3.object.created", where=payload.key.glob("exports/fx/*.csv")),
        within="2h",
    ),
    then=[
        run_deployment("build-reports"),
        emit("reports.inputs.ready", "reports.daily", payload={"at": "{{ firing.fired_at }}"}),
    ],
)

two_of_three_exports = Rule(
    name="two-of-three-exports",
    when=at_least(2, "crm.export.done", "erp.export.done", "web.export.done", within="1h"),
    then=[run_deployment("merge-exports")],
)
