"""The circuit breaker's service side: telling the rule's owner, and resuming.

The breaker itself lives in the store (:meth:`~interlock.service.store.Outbox.finish_many`
counts failed attempts in a row per rule and action index; at
``settings.actions.suspend_after`` it opens and suspends the action's rows), so it
survives restarts and is shared by every replica. What the dispatcher adds when one
opens: an ``interlock.action.suspended`` event, and a notification to the rule's
``owner`` channel if it has one (:func:`notify_owner`).

Only failed attempts reach it, in the order they ended. An action put back because its
destination had no free slot, or turned away by a destination that is busy but alive (a
refused or reset connection, HTTP 429), is not a failed attempt: the breaker judges
whether a destination works, not how busy a burst made it
(:mod:`~interlock.service.actions.pacing`). A destination that has not answered within
``actions.webhooks.health_window`` is down, and its refusals count.

Resuming is one call, :func:`resume_action`, which the API and the CLI expose.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from interlock.sdk.errors import ActionFailed
from interlock.service.actions import apprise_send
from interlock.service.actions.notify import resolve_url
from interlock.service.store import ActionBreaker, NotFound, StoreError

if TYPE_CHECKING:
    from interlock.service.context import Services

__all__ = ["notify_owner", "resume_action"]

logger = logging.getLogger(__name__)


async def resume_action(services: Services, rule: str, index: int | None = None) -> int:
    """Close the breaker of the rule's action ``index`` (or all its actions) and resume.

    Its suspended actions become pending with fresh attempts, and new firings queue
    normally again. Returns how many actions were resumed (0 is fine: the breaker is
    closed anyway).
    """
    resumed = await services.store.outbox.resume(rule, index)
    which = "every action" if index is None else f"action {index}"
    logger.info("resumed %s of rule %s: %d queued actions pending again", which, rule, resumed)
    return resumed


async def notify_owner(services: Services, breaker: ActionBreaker, kind: str) -> bool:
    """Tell the rule's owner channel that ``breaker`` opened; ``True`` if sent.

    Failures are logged, never raised: the suspension stands either way.
    """
    try:
        record = await services.store.rules.get(breaker.rule)
    except (NotFound, StoreError) as exc:
        logger.warning("cannot look up the owner of rule %s: %s", breaker.rule, exc)
        return False
    owner = record.rule.owner
    if not owner:
        return False
    title = f"Interlock: action {breaker.index} ({kind}) of rule {breaker.rule} is suspended"
    body = (
        f"It failed {breaker.failures} times in a row; the last error: "
        f"{breaker.last_error or '(none)'}.\n"
        "Its queued and new actions wait until the action is resumed: "
        f"`interlock rules resume-actions {breaker.rule} --index {breaker.index}`, or "
        f"POST /api/rules/{breaker.rule}/actions/resume?index={breaker.index}."
    )
    try:
        url = await resolve_url(services, owner, None)
        await apprise_send.send(
            url,
            title=title,
            body=body,
            timeout=services.settings.actions.timeout.total_seconds(),
            target=f"channel {owner!r}",
        )
    except ActionFailed as exc:
        logger.warning("telling the owner of rule %s failed: %s", breaker.rule, exc)
        return False
    return True
