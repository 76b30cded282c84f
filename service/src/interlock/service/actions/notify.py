"""The ``notify`` executor: Apprise, to a named channel (secret URL) or a URL in the rule.

The channel's URL is read from the store for each execution (so changing a channel takes
effect at once) and is never logged, returned or put into an error: errors name the
channel. An unknown channel fails at once (not retried): it will not appear by itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlock.sdk.executors import ActionFailed, ActionRequest, ActionResult
from interlock.service.actions import apprise_send
from interlock.service.store import NotFound, StoreError

if TYPE_CHECKING:
    from interlock.service.actions.registry import ServiceContext
    from interlock.service.context import Services

__all__ = ["NotifyExecutor", "resolve_url"]


async def resolve_url(services: Services, channel: str | None, url: str | None) -> str:
    """The Apprise URL of ``channel`` (from the store) or ``url``.

    Raises:
        ActionFailed: neither given, the channel does not exist (not retryable), or the
            store failed (retryable).
    """
    if channel:
        try:
            return await services.store.channels.get_secret(channel)
        except NotFound:
            raise ActionFailed(
                f"no channel {channel!r}: add it with `interlock channels add {channel} URL`",
                retryable=False,
            ) from None
        except StoreError as exc:
            raise ActionFailed(f"channel {channel!r}: {exc}") from None
    if url:
        return url
    raise ActionFailed("give a channel or an Apprise URL", retryable=False)


class NotifyExecutor:
    """Sends ``notify`` actions through Apprise."""

    def __init__(self, context: ServiceContext) -> None:
        self.services = context.services
        self.timeout = context.action_timeout

    async def execute(self, request: ActionRequest) -> ActionResult:
        """Send the notification (title and body are rendered already)."""
        action = request.action
        channel, url = action.get("channel"), action.get("url")
        target = apprise_send.describe_target(channel, url)
        secret = await resolve_url(self.services, channel, url)
        await apprise_send.send(
            secret,
            title=str(action.get("title", "")),
            body=str(action.get("body", "")),
            timeout=self.timeout,
            target=target,
        )
        return ActionResult(detail=f"notified {target}", data={"target": target})

    async def close(self) -> None:
        """Nothing to release."""
