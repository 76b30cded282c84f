"""Reacting to the legacy orchestrator: failures, flaky tasks, DAGs that start flows elsewhere."""

from interlock.rules import (
    Rule,
    notify,
    on,
    pause_queue,
    payload,
    resource,
    resume_queue,
    run_deployment,
)

finance_dag_failed = Rule(
    name="finance-dag-failed",
    tags=["airflow"],
    when=on("airflow.dag_run.failed", where=resource.team == "finance"),
    then=[
        notify(
            "data-team-slack",
            title="DAG {{ event.resource.id }} failed",
            body="run {{ event.payload.run_id }}: {{ event.payload.error }}",
        )
    ],
)

flaky_tasks_pause_etl = Rule(
    name="flaky-tasks-pause-etl",
    description="Three task failures of one DAG within an hour pause the ETL queue.",
    when=on("airflow.task_instance.failed", at_least=3, within="1h", for_each="resource.id"),
    then=[pause_queue("etl"), notify("platform-oncall", title="ETL paused: {{ key }} is flaky")],
)

etl_recovered = Rule(
    name="etl-recovered",
    when=on("airflow.dag_run.succeeded", where=payload.dag_id.one_of(["load_sales", "load_fx"])),
    then=[resume_queue("etl")],
)

dag_starts_flow = Rule(
    name="load-sales-starts-reports",
    description="Bridge: the Airflow DAG finishing starts the reporting flow.",
    when=on("airflow.dag_run.succeeded", where=resource.id == "airflow.load_sales"),
    then=[run_deployment("build-reports", parameters={"run": "{{ event.payload.run_id }}"})],
)
