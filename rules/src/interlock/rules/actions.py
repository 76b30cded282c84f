"""Actions: what a rule does when it fires (or resolves), declared, never executed here.

Tagged by ``action`` in JSON. String fields are Jinja templates rendered by the service
in a sandbox over the firing (see :mod:`interlock.rules.templates`): ``{{ rule.name }}``,
``{{ key }}``, ``{{ window.deadline }}``, ``{{ event.resource.id }}``, ...
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

__all__ = [
    "AnyAction",
    "Approve",
    "Call",
    "Emit",
    "Notify",
    "PauseQueue",
    "PauseRule",
    "PauseSchedule",
    "ResumeQueue",
    "ResumeRule",
    "ResumeSchedule",
    "RunDeployment",
    "Webhook",
]


class Notify(msgspec.Struct, frozen=True, kw_only=True, tag_field="action", tag="notify"):
    """Send a notification through Apprise, to a named channel or an Apprise URL."""

    channel: str | None = None
    """A channel whose (secret) Apprise URL the service stores."""
    url: str | None = None
    """An Apprise URL given directly (``mailto://``, ``slack://``, ``json://``...)."""
    title: str = "{{ rule.name }} {{ firing.status }}"
    body: str = "{{ firing.summary }}"


class RunDeployment(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="action", tag="run_deployment"
):
    """Start a run of a deployment with parameters (values may be templates)."""

    deployment: str
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)


class PauseQueue(msgspec.Struct, frozen=True, kw_only=True, tag_field="action", tag="pause_queue"):
    """Pause a work queue: its runs wait until it is resumed."""

    queue: str


class ResumeQueue(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="action", tag="resume_queue"
):
    """Resume a paused work queue."""

    queue: str


class PauseRule(msgspec.Struct, frozen=True, kw_only=True, tag_field="action", tag="pause_rule"):
    """Pause a rule (its windows keep their state but it fires nothing)."""

    rule: str


class ResumeRule(msgspec.Struct, frozen=True, kw_only=True, tag_field="action", tag="resume_rule"):
    """Resume a paused rule."""

    rule: str


class Webhook(msgspec.Struct, frozen=True, kw_only=True, tag_field="action", tag="webhook"):
    """Call an HTTP endpoint; ``body`` is JSON whose strings may be templates.

    The endpoint is ``url``, or an ``http`` connection the service keeps (its base URL
    and secret headers, resolved when the action runs) with ``path`` under it.
    """

    url: str = ""
    connection: str | None = None
    """An ``http`` connection's name: its base URL and headers (a bearer token)."""
    path: str = ""
    """With ``connection``: the path under its base URL (may be a template)."""
    method: str = "POST"
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    body: Any = None
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=1024)] | None = None
    """Requests in flight at once to the URL's destination (its scheme, host and port),
    per dispatcher; ``None``: the service's setting (``actions.webhooks``)."""


class Emit(msgspec.Struct, frozen=True, kw_only=True, tag_field="action", tag="emit"):
    """Publish a further event."""

    event: str
    resource_id: str
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    payload: dict[str, Any] = msgspec.field(default_factory=dict)


class PauseSchedule(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="action", tag="pause_schedule"
):
    """Turn a deployment's cron schedule off (it still runs on events and by hand)."""

    deployment: str


class ResumeSchedule(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="action", tag="resume_schedule"
):
    """Turn a deployment's cron schedule back on."""

    deployment: str


class Approve(msgspec.Struct, frozen=True, kw_only=True, tag_field="action", tag="approve"):
    """A manual approval step: the actions after it wait until a person decides.

    The request goes through Apprise (a channel or a URL) with approve and reject links;
    it may also be decided through the API or the CLI. Rejected, or expired with
    ``on_timeout="reject"``, the actions after it are cancelled.
    """

    channel: str | None = None
    """A channel whose (secret) Apprise URL the service stores."""
    url: str | None = None
    """An Apprise URL given directly."""
    title: str = "Approval needed: {{ rule.name }}"
    body: str = "{{ firing.summary }}"
    timeout: str | None = None
    """How long the request stays open (``30m``, ``2h``); ``None``: until decided."""
    on_timeout: str = "reject"
    """``reject`` (the default) or ``approve`` when the timeout passes undecided."""


class Call(msgspec.Struct, frozen=True, kw_only=True, tag_field="action", tag="call"):
    """An action carried out by an executor an adapter installs (Airflow, Prefect, ...).

    The service looks ``executor`` up in the entry-point group ``interlock.actions`` and
    hands it ``params`` (templates rendered) as the action's fields.
    """

    executor: str
    """The executor's name, e.g. ``airflow_trigger_dag``, ``prefect_run_deployment``."""
    params: dict[str, Any] = msgspec.field(default_factory=dict)


AnyAction = (
    Notify
    | RunDeployment
    | PauseQueue
    | ResumeQueue
    | PauseRule
    | ResumeRule
    | Webhook
    | Emit
    | PauseSchedule
    | ResumeSchedule
    | Approve
    | Call
)
