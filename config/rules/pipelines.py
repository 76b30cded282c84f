"""Jobs that must finish, workers that must beat, steps that must happen in order."""

from interlock.rules import (
    Rule,
    absent,
    after,
    heartbeat,
    notify,
    sequence,
    webhook,
)

nightly_job_finishes = Rule(
    name="nightly-job-finishes-within-2h",
    when=absent(
        "job.finished",
        by=after("job.started", within="2h"),
        for_each="payload.run_id",
    ),
    then=[notify("platform-oncall", title="Run {{ key }} has not finished after 2h")],
    on_resolved=[notify("platform-oncall", title="Run {{ key }} finished late")],
)

workers_beat = Rule(
    name="workers-heartbeat",
    when=absent("worker.heartbeat", by=heartbeat("10m"), for_each="resource.id"),
    then=[
        # No credential in the rule: a rule is stored as written, in plain text (see
        # docs/operations/secrets.md); notifications take a channel, stored encrypted.
        webhook(
            "https://status.example.com/api/incidents",
            body={"worker": "{{ key }}", "since": "{{ window.start }}"},
        )
    ],
)

etl_in_order = Rule(
    name="etl-steps-in-order",
    when=sequence(
        "etl.extract.done",
        "etl.load.done",
        "etl.transform.done",
        within="3h",
        for_each="payload.batch",
    ),
    then=[notify("json://127.0.0.1:8099/etl", title="batch {{ key }} complete")],
)
