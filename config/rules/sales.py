"""The sales table is updated daily by 09:00 (Berlin) on workdays; if not, page and backfill.

"Daily": an update counts for the day it happens, so each window starts at local midnight
(``start="start_of_day"``); without it, yesterday's 10:00 update would count for today.
"""

from interlock.rules import (
    Rule,
    absent,
    deadline,
    notify,
    resource,
    run_deployment,
    workdays,
)

sales_table_by_0900 = Rule(
    name="sales-table-by-0900",
    description="The morning sales report reads warehouse.sales at 09:15.",
    owner="data-team-slack",
    tags=["sla", "finance"],
    when=absent(
        "db.table.updated",
        where=resource.id == "warehouse.sales",
        by=deadline(
            "09:00",
            tz="Europe/Berlin",
            days=workdays(),
            holidays=["2026-12-25"],
            start="start_of_day",
        ),
        grace="5m",
    ),
    then=[
        notify(
            "data-team-slack",
            title="Sales table not refreshed by 09:00",
            body="{{ firing.summary }} (window {{ window.start }} to {{ window.deadline }})",
        ),
        run_deployment("backfill-sales", parameters={"date": "{{ window.deadline.date() }}"}),
    ],
    on_resolved=[notify("data-team-slack", title="Sales table arrived late: {{ event.occurred }}")],
)
