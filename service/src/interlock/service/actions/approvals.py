"""Manual approval steps: asking, deciding, expiring.

An ``approve`` action (see :class:`interlock.rules.Approve`) runs like this in the
dispatcher (:func:`run_step`):

1. the approval is recorded (``store.approvals``; its id is the action's idempotency
   key, so a retry reuses it and its token); it is not *sent* yet;
2. the request goes out through Apprise (a channel or a URL): the title, the body, and
   the links ``{public_url}/api/approvals/{token}/approve`` and ``.../reject`` (each a
   page with a form: opening it decides nothing, submitting it does);
3. only then is it sent: the ``approve`` row becomes ``waiting`` and the actions after
   it ``held`` (the claim never runs them before the approval anyway), its timeout
   starts, and ``interlock.approval.requested`` is published.

A request that cannot be sent (no channel of that name, a target that does not answer)
fails the attempt like any action's: the error is kept on the approval (its state is
``request_failed``), and the dispatcher tries again after its backoff, up to
``max_attempts``. A missing channel is retried too (unlike a ``notify``'s): an approval
waits for a person anyway, and the channel may be added meanwhile. Given up, the
actions after it are cancelled and the approval cannot be decided any more.

:func:`decide` (the API, the CLI, the links) records who decided, when and why, moves
the rows (approved: the held actions run; rejected: they are ``cancelled``) and
publishes ``interlock.approval.approved`` / ``rejected``; :func:`effect` says what the
decision did, in words. The dispatcher's housekeeping calls :func:`expire_due`, which
decides sent, undecided approvals past their timeout (``interlock.approval.expired``,
with ``outcome`` ``approved`` or ``rejected`` as the rule's ``on_timeout`` says): an
approval nobody was asked never expires into running anything. Timeouts are rows in the
database, never timers in memory, so they survive restarts.

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
from interlock.sdk.errors import ActionFailed
from interlock.sdk.vocabulary import ApprovalOutcome, approval_event_name
from interlock.service.actions import apprise_send
from interlock.service.store import Approval, ApprovalClosed, NotFound, OutboxAction, StoreError

if TYPE_CHECKING:
    from interlock.service.context import Services

__all__ = ["decide", "default_public_url", "effect", "expire_due", "links", "run_step"]

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


async def _publish(
    services: Services, name: ApprovalOutcome, approval: Approval, **extra: Any
) -> None:
    publisher = services.publisher
    occurred = approval.decided_at or approval.requested_at
    event = publisher.event(
        approval_event_name(name),
        approval.rule,
        payload=_payload(approval, **extra),
        occurred=occurred,
        id=uuid.uuid5(approval.id, name),
    )
    try:
        await publisher.publish(event)
    except Exception:  # an event lost must not undo the decision
        logger.exception("publishing %s failed", approval_event_name(name))


async def run_step(
    services: Services, row: OutboxAction, *, worker: str, public_url: str, timeout: float
) -> Approval:
    """Carry out the ``approve`` action ``row`` (claimed by ``worker``).

    Returns the approval, sent (or decided meanwhile).

    Raises:
        ActionFailed: the request could not be sent; the error is recorded on the
            approval (retried like any action; given up, the actions after it are
            cancelled).
    """
    action = row.action
    on_timeout: Literal["reject", "approve"] = (
        "approve" if action.get("on_timeout") == "approve" else "reject"
    )
    title = str(action.get("title", ""))
    approval = await services.store.approvals.request(
        row,
        token=secrets.token_urlsafe(24),
        title=title,
        expires_at=None,
        on_timeout=on_timeout,
    )
    wait = action.get("timeout")
    expires_at: datetime | None = None
    sent = approval.decision is None  # decided already (before it went out): not sent
    if sent:
        expires_at = services.clock.now() + parse_duration(str(wait)) if wait else None
        try:
            await _send(
                services,
                approval,
                action,
                public_url=public_url,
                expires_at=expires_at,
                timeout=timeout,
            )
        except ActionFailed as exc:
            await _record_failure(services, approval, str(exc))
            raise
    approval = await services.store.approvals.hold(
        approval.id, worker=worker, sent=sent, expires_at=expires_at
    )
    if approval.decision is None:
        await _publish(services, "requested", approval)
    return approval


async def _send(
    services: Services,
    approval: Approval,
    action: dict[str, Any],
    *,
    public_url: str,
    expires_at: datetime | None,
    timeout: float,
) -> None:
    channel, url = action.get("channel"), action.get("url")
    secret = await _resolve(services, channel, url)
    approve_link, reject_link = links(public_url, approval.token)
    lines = [str(action.get("body", "")), "", f"Approve: {approve_link}"]
    lines.append(f"Reject: {reject_link}")
    if expires_at is not None:
        verb = "approved" if approval.on_timeout == "approve" else "rejected"
        lines.append(f"Undecided at {expires_at:%Y-%m-%d %H:%M} UTC it is {verb}.")
    await apprise_send.send(
        secret,
        title=approval.title,
        body="\n".join(lines),
        timeout=timeout,
        target=apprise_send.describe_target(channel, url),
    )


async def _resolve(services: Services, channel: str | None, url: str | None) -> str:
    """The Apprise URL of the request: a missing channel is retried (it may be added)."""
    if channel:
        try:
            return await services.store.channels.get_secret(channel)
        except NotFound:
            raise ActionFailed(
                f"no channel {channel!r}: add it with `interlock channels add {channel} URL` "
                "(the request is tried again)",
                retryable=True,
            ) from None
        except StoreError as exc:
            raise ActionFailed(f"channel {channel!r}: {exc}") from None
    if url:
        return url
    raise ActionFailed("give a channel or an Apprise URL", retryable=False)


async def _record_failure(services: Services, approval: Approval, error: str) -> None:
    try:
        await services.store.approvals.request_failed(approval.id, error)
    except StoreError:  # the outbox row keeps the error too; the attempt fails either way
        logger.exception("recording the failed request of approval %s failed", approval.id)


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
    An approval whose request has not gone out yet may be decided: it is then not sent
    any more (:func:`effect` says so).

    Raises:
        NotFound: no such approval, or the firing has none.
        ApprovalGivenUp: its request was never sent and was given up: nothing to decide.
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


def effect(approval: Approval) -> str:
    """What deciding ``approval`` did, in words (for the API's and the CLI's answers)."""
    if approval.decision is None:
        return "nothing yet: it is not decided"
    then = (
        "the actions after it run now"
        if approval.approved
        else "the actions after it are cancelled"
    )
    if approval.request_state == "sent":
        return then
    why = f" ({approval.request_error})" if approval.request_error else ""
    return f"{then}; its request had not gone out{why} and is not sent any more"


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
