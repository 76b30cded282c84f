"""Interlock's persistent state, in SQLite (embedded) or PostgreSQL (production).

Rules, firings, the action outbox (with its circuit breakers and approvals), engine
checkpoints, notification channels, API keys, deployments, work queues and runs.

:class:`Store` is the entry point; its repositories (``store.rules``, ``store.outbox``,
...) each own one aggregate. Every method is async (SQLAlchemy 2 with aiosqlite or
psycopg 3), takes its timestamps from an injected clock, and raises only
:class:`StoreError` and its subclasses for database trouble.
"""

from interlock.service.store.api_keys import ApiKeys
from interlock.service.store.approvals import ApprovalClosed, ApprovalGivenUp, Approvals
from interlock.service.store.attempts import Attempt, AttemptOutcome, Attempts
from interlock.service.store.channels import Channels
from interlock.service.store.deployments import Deployments, Queues
from interlock.service.store.errors import (
    AlreadyExists,
    Fenced,
    InUse,
    InvalidRecord,
    InvalidTransition,
    NotFound,
    RuleUnreadable,
    StoreError,
    StoreUnavailable,
)
from interlock.service.store.firings import Firings
from interlock.service.store.outbox import FinishReport, Outbox, Outcome, Reservation
from interlock.service.store.records import (
    ActionBreaker,
    ActionState,
    ApiKey,
    Approval,
    ApprovalDecision,
    ApprovalRequestState,
    ApprovalState,
    BatchResult,
    Channel,
    Checkpoint,
    Deployment,
    NewApiKey,
    OutboxAction,
    OutboxEntry,
    RuleChange,
    RuleRecord,
    RuleVersion,
    Run,
    RunState,
    Scope,
    UnreadableRule,
    WorkQueue,
    outbox_entries,
)
from interlock.service.store.rules import Rules
from interlock.service.store.runs import TRANSITIONS, Runs
from interlock.service.store.store import Store

__all__ = [
    "TRANSITIONS",
    "ActionBreaker",
    "ActionState",
    "AlreadyExists",
    "ApiKey",
    "ApiKeys",
    "Approval",
    "ApprovalClosed",
    "ApprovalDecision",
    "ApprovalGivenUp",
    "ApprovalRequestState",
    "ApprovalState",
    "Approvals",
    "Attempt",
    "AttemptOutcome",
    "Attempts",
    "BatchResult",
    "Channel",
    "Channels",
    "Checkpoint",
    "Deployment",
    "Deployments",
    "Fenced",
    "FinishReport",
    "Firings",
    "InUse",
    "InvalidRecord",
    "InvalidTransition",
    "NewApiKey",
    "NotFound",
    "Outbox",
    "OutboxAction",
    "OutboxEntry",
    "Outcome",
    "Queues",
    "Reservation",
    "RuleChange",
    "RuleRecord",
    "RuleUnreadable",
    "RuleVersion",
    "Rules",
    "Run",
    "RunState",
    "Runs",
    "Scope",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "UnreadableRule",
    "WorkQueue",
    "outbox_entries",
]
