"""The ``pause_rule`` and ``resume_rule`` executors, through the service's RuleControl."""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlock.sdk.executors import ActionFailed, ActionRequest, ActionResult
from interlock.service.store import NotFound, StoreError

if TYPE_CHECKING:
    from interlock.service.actions.registry import ServiceContext

__all__ = ["PauseRuleExecutor", "ResumeRuleExecutor"]


class _SetPaused:
    paused: bool

    def __init__(self, context: ServiceContext) -> None:
        self.services = context.services

    async def execute(self, request: ActionRequest) -> ActionResult:
        """Pause or resume the rule named by the action."""
        name = str(request.action.get("rule", ""))
        verb = "pause" if self.paused else "resume"
        try:
            await self.services.rules.set_paused(name, self.paused)
        except NotFound:
            raise ActionFailed(f"{verb}_rule: no rule {name!r}", retryable=False) from None
        except StoreError as exc:
            raise ActionFailed(f"{verb}_rule {name!r}: {exc}") from None
        return ActionResult(detail=f"rule {name} {verb}d", data={"rule": name})

    async def close(self) -> None:
        """Nothing to release."""


class PauseRuleExecutor(_SetPaused):
    """Pauses rules."""

    paused = True


class ResumeRuleExecutor(_SetPaused):
    """Resumes rules."""

    paused = False
