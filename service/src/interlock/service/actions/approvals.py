"""Manual approval steps: asking, deciding, expiring.

An ``approve`` action (see :class:`interlock.rules.Approve`) runs like this in the
dispatcher (:func:`run_step`):

1. the approval is recorded (``store.approvals``; its id is the action's idempotency
   key, so a retry reuses it and its token);
2. the request goes out through Apprise (a channel or a URL): the title, the body, and
   the links ``{public_url}/api/approvals/{token}/approve`` and ``.../reject`` (each a
   page with a form: opening it decides nothing, submitting it does);
3. the ``approve`` row becomes ``waiting`` and the actions after it ``held`` (the claim
   never runs them before the approval anyway), and ``interlock.approval.requested`` is
   published.

:func:`decide` (the API, the CLI, the links) records who decided, when and why, moves
the rows (approved: the held actions run; rejected: they are ``cancelled``) and
publishes ``interlock.approval.approved`` / ``rejected``. The dispatcher's housekeeping
calls :func:`expire_due`, which decides undecided approvals past their timeout
(``interlock.approval.expired``, with ``outcome`` ``approved`` or ``rejected`` as the
rule's ``on_timeout`` says). Timeouts are rows in the database, never timers in memory,
so they survive restarts.

Every event has ``resource.id`` = the rule's name and a payload with the approval id,
the firing id, the action index, who decided, when, and the reason — never the token.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from interlock.sdk.durations import parse_duration
from interlock.service.actions import apprise_send
from interlock.service.actions.notify import resolve_url
from interlock.service.store import Approval, ApprovalClosed, OutboxAction

if TYPE_CHECKING:
    from interlock.service.context import Services

__all__ = ["decide", "default_public_url", "expire_due", "links", "run_step"]

logger = logging.getLogger(__name__)


def default_public_url(services: Services) -> str:
    """Where people reach the API, for the links in approval requests.

    ``settings.actions.public_url`` or ``settings.api.public_url`` if the settings have
    one; else the API's own address (``http://127.0.0.1:8400`` by default).
    """
    settings = services.settings
    for group in (settings.actions, settings.api):
        configured = getattr(group, "public_url", None)
        if configured:
            return str(configured).rstrip("/")
    host = settings.api.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding it
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.api.port}"


def links(public_url: str, token: str) -> tuple[str, str]:
    """The approve and reject links of an approval."""
    base = f"{public_url.rstrip('/')}/api/approvals/{token}"
    return f"{base}/approve", f"{base}/reject"


def _payload(approval: Approval, **extra: Any) -> dict[str, Any]:
    return {
        "approval_id": str(approval.id),
        "firing_id": str(approval.firing_id),
        "index": approval.index,
        "title": approval.title,
        "requested_at": approval.requested_at.isoformat(),
        "expires_at": approval.expires_at.isoformat() if approval.expires_at else None,
        "decision": approval.decision,
        "decided_by": approval.decided_by,
        "decided_at": approval.decided_at.isoformat() if approval.decided_at else None,
        "reason": approval.reason,
        **extra,
    }


async def _publish(services: Services, name: str, approval: Approval, **extra: Any) -> None:
    publisher = services.publisher
    occurred = approval.decided_at or approval.requested_at
    event = publisher.event(
        f"interlock.approval.{name}",
        approval.rule,
        payload=_payload(approval, **extra),
        occurred=occurred,
        id=uuid.uuid5(approval.id, name),
    )
    try:
        await publisher.publish(event)
    except Exception:  # an event lost must not undo the decision
        logger.exception("publishing interlock.approval.%s failed", name)


async def run_step(
    services: Services, row: OutboxAction, *, worker: str, public_url: str, timeout: float
) -> Approval:
    """Carry out the ``approve`` action ``row`` (claimed by ``worker``).

    Raises:
        ActionFailed: the request could not be sent (retried like any action; given up,
            the actions after it are cancelled).
    """
    action = row.action
    wait = action.get("timeout")
    now = services.clock.now()
    expires_at: datetime | None = now + parse_duration(str(wait)) if wait else None
    on_timeout: Literal["reject", "approve"] = (
        "approve" if action.get("on_timeout") == "approve" else "reject"
    )
    title = str(action.get("title", ""))
    approval = await services.store.approvals.request(
        row,
        token=secrets.token_urlsafe(24),
        title=title,
        expires_at=expires_at,
        on_timeout=on_timeout,
    )
    if approval.decision is None:
        channel, url = action.get("channel"), action.get("url")
        secret = await resolve_url(services, channel, url)
        approve_link, reject_link = links(public_url, approval.token)
        lines = [str(action.get("body", "")), "", f"Approve: {approve_link}"]
        lines.append(f"Reject: {reject_link}")
        if approval.expires_at is not None:
            verb = "approved" if on_timeout == "approve" else "rejected"
            lines.append(f"Undecided at {approval.expires_at:%Y-%m-%d %H:%M} UTC it is {verb}.")
        await apprise_send.send(
            secret,
            title=title,
            body="\n".join(lines),
            timeout=timeout,
            target=apprise_send.describe_target(channel, url),
        )
    approval = await services.store.approvals.hold(approval.id, worker=worker)
    if approval.decision is None:
        await _publish(services, "requested", approval)
    return approval


async def decide(
    services: Services,
    *,
    firing_id: uuid.UUID | None = None,
    token: str | None = None,
    approve: bool,
    by: str,
    reason: str = "",
) -> Approval:
    """Approve or reject the approval named by ``token``, or the firing's pending one.

    Approved, the actions after the ``approve`` step run; rejected, they are cancelled.

    Raises:
        NotFound: no such approval, or the firing has none pending.
        ApprovalClosed: it was decided already (or expired).
        ValueError: not exactly one of ``firing_id`` and ``token``.
    """
    if (firing_id is None) == (token is None):
        raise ValueError("name the approval by its firing id or its token (exactly one)")
    approval = await services.store.approvals.decide(
        decision="approved" if approve else "rejected",
        by=by,
        reason=reason,
        token=token,
        firing_id=firing_id,
    )
    logger.info(
        "approval of rule %s (firing %s, action %d) %s by %s",
        approval.rule,
        approval.firing_id,
        approval.index,
        approval.decision,
        by,
    )
    await _publish(services, "approved" if approve else "rejected", approval)
    return approval


async def expire_due(services: Services, *, limit: int = 100) -> list[Approval]:
    """Expire the undecided approvals whose timeout has passed; return them, decided."""
    expired: list[Approval] = []
    for due in await services.store.approvals.due(limit=limit):
        try:
            approval = await services.store.approvals.decide(
                decision="expired", by="timeout", id=due.id
            )
        except ApprovalClosed:
            continue  # decided meanwhile, by a person or another replica
        outcome = "approved" if approval.approved else "rejected"
        logger.info(
            "approval of rule %s (firing %s, action %d) expired: %s",
            approval.rule,
            approval.firing_id,
            approval.index,
            outcome,
        )
        await _publish(services, "expired", approval, outcome=outcome)
        expired.append(approval)
    return expired
