"""Approvals over HTTP: list the pending ones, decide them with a key or with a link.

- ``GET /api/approvals`` (read): pending approvals (``?decided=true``: decided ones too);
  their tokens are never shown (a token decides without a key);
- ``POST /api/firings/{firing_id}/approve`` and ``/reject`` (write), body
  ``{"by": "...", "reason": "..."}`` (``by`` defaults to the API key's name): decide the
  firing's pending approval;
- ``GET /api/approvals/{token}/approve`` and ``/reject`` (no key: the token, sent only in
  the approval request, is the credential): the links in the request; they answer with
  a short text page.

A decided approval cannot be decided again: 409, saying who decided it and when.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from interlock.service.actions.approvals import decide
from interlock.service.api.auth import current_key, require_read, require_write
from interlock.service.api.deps import ServicesDep
from interlock.service.store import Approval, ApprovalClosed, NotFound

__all__ = ["ApprovalController", "ApprovalView", "Decision"]


class Decision(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who decides, and why."""

    by: str = ""
    """Who decided (default: the API key's name, or ``api``)."""
    reason: str = ""


class ApprovalView(msgspec.Struct, frozen=True, kw_only=True):
    """An approval as the API shows it (without its token)."""

    id: uuid.UUID
    firing_id: uuid.UUID
    rule: str
    index: int
    title: str
    requested_at: datetime
    expires_at: datetime | None
    on_timeout: str
    decision: str | None
    decided_by: str | None
    decided_at: datetime | None
    reason: str

    @classmethod
    def of(cls, approval: Approval) -> ApprovalView:
        """The view of ``approval``."""
        fields = msgspec.structs.asdict(approval)
        fields.pop("token")
        return cls(**fields)


def _conflict(exc: ApprovalClosed) -> Response[dict[str, Any]]:
    return Response(
        {"status_code": 409, "detail": str(exc)}, status_code=409, media_type=MediaType.JSON
    )


def _page(status: int, text: str) -> Response[str]:
    return Response(text + "\n", status_code=status, media_type=MediaType.TEXT)


class ApprovalController(Controller):
    """Manual approval steps."""

    path = "/api"
    tags = ["approvals"]  # noqa: RUF012 - Litestar's declared attribute

    @get("/approvals", guards=[require_read], summary="List approvals")
    async def list_approvals(
        self,
        services: ServicesDep,
        *,
        rule: Annotated[str | None, QueryParameter(description="Only this rule's.")] = None,
        decided: Annotated[bool, QueryParameter(description="Decided ones too.")] = False,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[ApprovalView]:
        """Pending approvals, oldest request first."""
        found = await services.store.approvals.list(pending=not decided, rule=rule, limit=limit)
        return [ApprovalView.of(approval) for approval in found]

    @post(
        "/firings/{firing_id:uuid}/approve",
        guards=[require_write],
        summary="Approve a firing",
        status_code=200,
    )
    async def approve_firing(
        self,
        firing_id: FromPath[uuid.UUID],
        services: ServicesDep,
        request: Request[Any, Any, Any],
        data: JSONBody[Decision | None] = None,
    ) -> ApprovalView | Response[dict[str, Any]]:
        """Approve the firing's pending approval: the actions after it run."""
        return await self._decide(services, request, firing_id, data, approve=True)

    @post(
        "/firings/{firing_id:uuid}/reject",
        guards=[require_write],
        summary="Reject a firing",
        status_code=200,
    )
    async def reject_firing(
        self,
        firing_id: FromPath[uuid.UUID],
        services: ServicesDep,
        request: Request[Any, Any, Any],
        data: JSONBody[Decision | None] = None,
    ) -> ApprovalView | Response[dict[str, Any]]:
        """Reject the firing's pending approval: the actions after it are cancelled."""
        return await self._decide(services, request, firing_id, data, approve=False)

    @get("/approvals/{token:str}/approve", summary="Approve through a link", media_type="text")
    async def approve_link(self, token: FromPath[str], services: ServicesDep) -> Response[str]:
        """The approve link of an approval request (the token is the credential)."""
        return await self._link(services, token, approve=True)

    @get("/approvals/{token:str}/reject", summary="Reject through a link", media_type="text")
    async def reject_link(self, token: FromPath[str], services: ServicesDep) -> Response[str]:
        """The reject link of an approval request (the token is the credential)."""
        return await self._link(services, token, approve=False)

    async def _decide(
        self,
        services: Any,
        request: Request[Any, Any, Any],
        firing_id: uuid.UUID,
        data: Decision | None,
        *,
        approve: bool,
    ) -> ApprovalView | Response[dict[str, Any]]:
        data = data or Decision()
        key = current_key(request)
        by = data.by or (key.name if key is not None else "api")
        try:
            approval = await decide(
                services, firing_id=firing_id, approve=approve, by=by, reason=data.reason
            )
        except ApprovalClosed as exc:
            return _conflict(exc)
        return ApprovalView.of(approval)

    async def _link(self, services: Any, token: str, *, approve: bool) -> Response[str]:
        try:
            approval = await decide(services, token=token, approve=approve, by="approval link")
        except NotFound:
            return _page(404, "No such approval: the link is wrong or incomplete.")
        except ApprovalClosed as exc:
            return _page(
                409, f"Already decided: {exc.approval.decision} by {exc.approval.decided_by}."
            )
        verb = "Approved" if approve else "Rejected"
        then = "the actions after it run now" if approve else "the actions after it are cancelled"
        return _page(200, f"{verb}: {approval.title} (rule {approval.rule}); {then}.")
