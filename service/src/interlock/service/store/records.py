"""What the store takes and returns: frozen, keyword-only value objects.

Records carry no secrets. :class:`NewApiKey` holds a token once, at creation, and hides
it from ``repr``; a channel's Apprise URL is never in a record (only
:meth:`~interlock.service.store.Channels.get_secret` returns it, for the dispatcher).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec

from interlock.rules.action_rendering import action_fields
from interlock.rules.engine.firing import Firing
from interlock.rules.rule import Rule
from interlock.sdk.vocabulary import RunState

__all__ = [
    "ActionBreaker",
    "ActionState",
    "ApiKey",
    "Approval",
    "ApprovalDecision",
    "ApprovalRequestState",
    "ApprovalState",
    "BatchResult",
    "Channel",
    "Checkpoint",
    "Deployment",
    "NewApiKey",
    "OutboxAction",
    "OutboxEntry",
    "RuleChange",
    "RuleRecord",
    "RuleVersion",
    "Run",
    "RunState",
    "Scope",
    "UnreadableRule",
    "WorkQueue",
    "outbox_entries",
]

ActionState = Literal[
    "pending", "running", "succeeded", "failed", "suspended", "waiting", "held", "cancelled"
]
"""``waiting``: an ``approve`` step whose request went out, waiting for the decision;
``held``: an action after such a step; ``cancelled``: the approval was rejected or
expired (terminal). See :mod:`interlock.service.store.outbox`."""
Scope = Literal["read", "publish", "write", "admin", "worker"]
"""What an API key may do: ``read`` looks; ``publish`` only sends events (producers,
adapters); ``write`` reads, publishes and changes rules, queues, runs and approvals;
``admin`` also manages keys, channels and deployments (which run commands on workers);
``worker`` only runs runs (``interlock worker --api-url``: claims, heartbeats, states,
logs, and the connections its targets name, secrets included). No other scope grants
``worker``, and ``worker`` grants nothing else."""

_GRANTS: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "publish": frozenset({"publish"}),
    "write": frozenset({"read", "publish", "write"}),
    "admin": frozenset({"read", "publish", "write", "admin"}),
    "worker": frozenset({"worker"}),
}


class RuleRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A stored rule: its current version and whether it is paused."""

    name: str
    version: int
    paused: bool
    rule: Rule
    created_at: datetime
    updated_at: datetime


class UnreadableRule(msgspec.Struct, frozen=True, kw_only=True):
    """A stored rule whose definition no longer reads as a rule (see ``RuleUnreadable``)."""

    name: str
    version: int
    paused: bool
    document: dict[str, Any]
    """The stored definition as JSON data (the rule's entry of its stored document)."""
    problem: str
    owner: str | None
    """The ``owner`` the document names, if it names a string there."""
    created_at: datetime
    updated_at: datetime


class RuleVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One applied version of a rule."""

    name: str
    version: int
    rule: Rule
    digest: str
    """sha256 of the stored document; equal rules, equal digests."""
    created_at: datetime


class RuleChange(msgspec.Struct, frozen=True, kw_only=True):
    """What applying a rule did."""

    record: RuleRecord
    change: Literal["created", "updated", "unchanged"]


class OutboxEntry(msgspec.Struct, frozen=True, kw_only=True):
    """An action to queue for a firing: the ``index``-th of the rule's list for its status."""

    firing_id: uuid.UUID
    index: int
    rule: str
    kind: str
    """The action's tag (``notify``, ``webhook``, ...)."""
    action: dict[str, Any]
    """The action as JSON, as the rule said it when the firing happened."""

    @property
    def idempotency_key(self) -> uuid.UUID:
        """``uuid5(firing id, str(index))``: the same firing and action, the same key."""
        return uuid.uuid5(self.firing_id, str(self.index))


def action_kind(action: Mapping[str, Any]) -> str:
    """An action's executor kind (from built-ins): its tag, or the executor it calls."""
    kind = str(action.get("action", ""))
    return str(action["executor"]) if kind == "call" else kind


def outbox_entries(firing: Firing, actions: Sequence[msgspec.Struct]) -> list[OutboxEntry]:
    """The outbox entries of ``firing`` for ``actions`` (tagged action structs).

    ``actions`` is the rule's ``then`` for a fired firing, ``on_resolved`` for a resolved
    one; an entry's index is the action's position in that list.
    """
    entries = []
    for index, action in enumerate(actions):
        kind, data = action_fields(action)  # the same fields scenarios render
        entries.append(
            OutboxEntry(firing_id=firing.id, index=index, rule=firing.rule, kind=kind, action=data)
        )
    return entries


class OutboxAction(msgspec.Struct, frozen=True, kw_only=True):
    """A queued action and how its dispatch is going."""

    idempotency_key: uuid.UUID
    firing_id: uuid.UUID
    index: int
    rule: str
    kind: str
    action: dict[str, Any]
    state: ActionState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    claimed_by: str | None
    claimed_until: datetime | None
    created_at: datetime
    updated_at: datetime


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """The engine's state and the last stream sequence it covers."""

    name: str = "default"
    state: bytes
    """``Engine.export_state()``."""
    stream_sequence: int
    saved_at: datetime | None = None
    """Set by the store when read back."""


class BatchResult(msgspec.Struct, frozen=True, kw_only=True):
    """What :meth:`~interlock.service.store.Store.store_batch` stored."""

    stored: list[uuid.UUID]
    """Firings stored now."""
    already_stored: list[uuid.UUID]
    """Firings stored before (a replay): stored nothing, queued no action."""
    queued: list[uuid.UUID]
    """Idempotency keys of the outbox rows added."""


class Channel(msgspec.Struct, frozen=True, kw_only=True):
    """A notification channel, its Apprise URL redacted to its scheme."""

    name: str
    url: str
    """Redacted: ``slack://***``."""
    created_at: datetime
    updated_at: datetime


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """An API key, without its token."""

    id: uuid.UUID
    name: str
    prefix: str
    """The public part of the token, for lookup and for people to tell keys apart."""
    scopes: list[Scope]
    created_at: datetime
    revoked_at: datetime | None = None

    def allows(self, scope: Scope) -> bool:
        """Whether the key grants ``scope``.

        ``admin`` grants everything but ``worker``; ``write`` grants ``read`` and
        ``publish``; ``read``, ``publish`` and ``worker`` grant only themselves (a
        producer's key reads nothing, a reader's key publishes nothing, a worker's key
        only runs runs).
        """
        return self.revoked_at is None and any(
            scope in _GRANTS.get(held, frozenset()) for held in self.scopes
        )


class NewApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """A key just created, with its token: the only time the token is known."""

    key: ApiKey
    token: str

    def __repr__(self) -> str:
        return f"NewApiKey(key={self.key!r}, token='{self.token.rpartition('_')[0]}_***')"

    __str__ = __repr__


class WorkQueue(msgspec.Struct, frozen=True, kw_only=True):
    """A work queue runs go through."""

    name: str
    paused: bool
    concurrency_limit: int | None
    created_at: datetime
    updated_at: datetime


class Deployment(msgspec.Struct, frozen=True, kw_only=True):
    """A named, runnable unit."""

    name: str
    target: dict[str, Any]
    queue: str
    schedule: str | None
    """A cron expression, or ``None`` to run only on events and by hand."""
    schedule_enabled: bool
    parameters: dict[str, Any]
    tags: list[str]
    description: str
    created_at: datetime
    updated_at: datetime
    policy: dict[str, Any] = msgspec.field(default_factory=dict)
    """Run policy: ``retries``, ``retry_delay`` (seconds), ``backoff`` (factor),
    ``timeout`` (seconds); see :mod:`interlock.service.deployments.policy`."""
    concurrency_limit: int | None = None
    """Its runs running at once over every worker (besides its queue's limit)."""


class Run(msgspec.Struct, frozen=True, kw_only=True):
    """One run of a deployment."""

    id: uuid.UUID
    deployment: str
    queue: str
    parameters: dict[str, Any]
    state: RunState
    idempotency_key: str | None
    scheduled_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    log_path: str | None
    message: str | None
    created_at: datetime
    updated_at: datetime
    attempt: int = 1
    """1 for the first attempt; a retry moves the run back to ``scheduled`` with +1."""
    remote_id: str | None = None
    """The remote run's id, for a target that runs elsewhere (a DAG run, a flow run)."""
    remote_url: str | None = None
    """Where the remote run is shown."""
    remote_state: str | None = None
    """The remote system's own word for its state (``queued``, ``RUNNING``)."""


ApprovalDecision = Literal["approved", "rejected", "expired"]
ApprovalRequestState = Literal["sending", "sent", "failed", "given_up", "not_sent"]
"""Where an approval's request is: ``sending`` (its first attempt is under way),
``sent``, ``failed`` (an attempt failed; the action's retry policy tries again),
``given_up`` (the retries are spent: the actions after it were cancelled), ``not_sent``
(decided before it ever went out)."""
ApprovalState = Literal[
    "sending", "request_failed", "request_given_up", "pending", "approved", "rejected", "expired"
]
"""An approval at a glance: its decision, else ``pending`` once its request went out,
else where the request is (see :data:`ApprovalRequestState`)."""


class Approval(msgspec.Struct, frozen=True, kw_only=True):
    """A manual approval asked for by an ``approve`` action of a firing.

    Its ``id`` is the idempotency key of the ``approve`` outbox row, so a retried
    request reuses the same approval (and token).
    """

    id: uuid.UUID
    firing_id: uuid.UUID
    rule: str
    index: int
    """The ``approve`` action's position in the firing's list; later actions wait."""
    token: str = msgspec.field(default="")
    """The credential in the approve/reject links: shown only to the request's audience."""
    title: str
    requested_at: datetime
    expires_at: datetime | None
    on_timeout: Literal["reject", "approve"]
    decision: ApprovalDecision | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str = ""
    sent_at: datetime | None = None
    """When its request went out; ``None`` while it has not (it cannot expire then)."""
    request_state: ApprovalRequestState = "sent"
    request_error: str | None = None
    """Why the last attempt to send its request failed."""
    attempts: int = 0
    """Attempts of its ``approve`` action so far (the dispatcher's count)."""
    retry_at: datetime | None = None
    """When the request is tried again (``request_state == "failed"``)."""

    def __repr__(self) -> str:
        return (
            f"Approval(id={self.id!s}, rule={self.rule!r}, index={self.index}, "
            f"decision={self.decision!r}, request={self.request_state!r})"
        )

    __str__ = __repr__

    @property
    def approved(self) -> bool:
        """Whether the actions after it run: approved, or expired with ``on_timeout=approve``."""
        if self.decision == "expired":
            return self.on_timeout == "approve"
        return self.decision == "approved"

    @property
    def state(self) -> ApprovalState:
        """Its decision if it has one; else ``pending`` once sent; else the request's state."""
        if self.decision is not None:
            return self.decision
        if self.request_state == "sent":
            return "pending"
        if self.request_state == "sending":
            return "sending"
        if self.request_state == "given_up":
            return "request_given_up"
        return "request_failed"


class ActionBreaker(msgspec.Struct, frozen=True, kw_only=True):
    """The circuit breaker of one action of one rule (the rule's ``index``-th action).

    ``failures`` counts failed attempts in a row (any success resets it); at the
    configured threshold the breaker opens: ``suspended`` until resumed.
    """

    rule: str
    index: int
    failures: int
    suspended: bool
    suspended_at: datetime | None
    last_error: str | None
    updated_at: datetime
