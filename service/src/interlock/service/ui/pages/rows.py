"""Rows several pages list: firings, actions, SLA windows, approvals."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from interlock.rules.engine.firing import Firing
from interlock.service.store import Approval, OutboxAction

__all__ = ["ActionRow", "ApprovalRow", "FiringRow", "dom_id"]


def dom_id(prefix: str, *parts: str) -> str:
    """An element id from a digest of ``parts`` (never raw key text in markup ids)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
    return f"{prefix}-{digest}"


@dataclass(frozen=True, slots=True)
class FiringRow:
    """A firing in a list."""

    id: uuid.UUID
    rule: str
    key: str
    status: str
    """``fired`` or ``resolved``."""
    status_word: str
    """``fired``, ``missed``, ``resolved late``."""
    at: datetime
    late: bool
    summary: str

    @classmethod
    def of(cls, firing: Firing, *, absence: bool = False) -> FiringRow:
        """The row of ``firing`` (``absence``: its rule is an SLA, so it fired as a miss)."""
        word = "missed" if absence else "fired"
        if firing.status == "resolved":
            word = "resolved late"
        return cls(
            id=firing.id,
            rule=firing.rule,
            key=firing.key,
            status=firing.status,
            status_word=word,
            at=firing.at,
            late=firing.late,
            summary=firing.summary,
        )


@dataclass(frozen=True, slots=True)
class ActionRow:
    """An action of a firing, in a list."""

    firing_id: uuid.UUID
    rule: str
    index: int
    kind: str
    state: str
    attempts: int
    last_error: str | None
    updated_at: datetime

    @classmethod
    def of(cls, action: OutboxAction) -> ActionRow:
        """The row of ``action``."""
        return cls(
            firing_id=action.firing_id,
            rule=action.rule,
            index=action.index,
            kind=action.kind,
            state=action.state,
            attempts=action.attempts,
            last_error=action.last_error,
            updated_at=action.updated_at,
        )


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    """An approval, as the approvals page and a firing's page show it."""

    id: uuid.UUID
    dom_id: str
    firing_id: uuid.UUID
    rule: str
    title: str
    state: str
    requested_at: datetime
    expires_at: datetime | None
    on_timeout: str
    decision: str | None
    decided_by: str | None
    decided_at: datetime | None
    reason: str
    open: bool
    """Whether it can still be decided."""

    @classmethod
    def of(cls, approval: Approval) -> ApprovalRow:
        """The row of ``approval``."""
        return cls(
            id=approval.id,
            dom_id=dom_id("approval", str(approval.id)),
            firing_id=approval.firing_id,
            rule=approval.rule,
            title=approval.title,
            state=approval.state,
            requested_at=approval.requested_at,
            expires_at=approval.expires_at,
            on_timeout=approval.on_timeout,
            decision=approval.decision,
            decided_by=approval.decided_by,
            decided_at=approval.decided_at,
            reason=approval.reason,
            open=approval.decision is None and approval.request_state != "given_up",
        )
