"""Approvals over HTTP: list the pending ones, decide them with a key or with a link.

- ``GET /api/approvals`` (read): open approvals (``?decided=true``: decided and given-up
  ones too; ``?firing_id=``: one firing's); their tokens are never shown (a token
  decides without a key). Each has a ``state``: ``pending`` once its request went out,
  before that ``sending``, ``request_failed`` (with ``request_error``, ``attempts`` and
  ``retry_at``: the ``approve`` action's retry policy tries again) or
  ``request_given_up``; decided, ``approved``, ``rejected`` or ``expired``;
- ``POST /api/firings/{firing_id}/approve`` and ``/reject`` (write), body
  ``{"by": "...", "reason": "..."}`` (``by`` defaults to the API key's name): decide the
  firing's pending approval; the answer's ``effect`` says what the decision did. An
  approval whose request has not gone out may be decided (it is then not sent any
  more); one whose request was given up cannot (409: the actions after it were
  cancelled, so nothing would happen);
- ``GET /api/approvals/{token}/approve`` and ``/reject`` (no key: the token, sent only in
  the approval request, is the credential): the links in the request. Opening one
  decides nothing (chat apps and mail scanners open links to preview them): it shows the
  approval and a form asking for the person's name and a reason;
- ``POST`` to the same link (that form, or ``curl -d by=ana URL``) decides, recording the
  name given (``approval link`` when none is). The pages are the web UI's templates
  (``ui/approval_link.html``); their form carries a CSRF token bound to the link, which
  a browser's ``POST`` must send back (a command line sends no ``Origin`` and needs none).

A decided approval cannot be decided again: 409, saying who decided it and when.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, JSONBody, QueryParameter
from litestar.response import Template

from interlock.service.actions.approvals import decide, effect
from interlock.service.api import ids
from interlock.service.api.auth import current_key, require_read, require_write
from interlock.service.api.deps import ServicesDep
from interlock.service.api.errors import problem
from interlock.service.store import (
    Approval,
    ApprovalClosed,
    ApprovalGivenUp,
    ApprovalRequestState,
    ApprovalState,
    NotFound,
)
from interlock.service.ui.pages.approvals import LinkForm, link_page
from interlock.service.ui.security import signer_of

__all__ = [
    "ApprovalController",
    "ApprovalView",
    "Decided",
    "Decision",
    "LinkDecision",
    "LinkFormBody",
]

_MAX_NAME = 200
_MAX_REASON = 2000


class Decision(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who decides, and why."""

    by: Annotated[str, msgspec.Meta(max_length=_MAX_NAME)] = ""
    """Who decided (default: the API key's name, or ``api``); at most 200 characters."""
    reason: Annotated[str, msgspec.Meta(max_length=_MAX_REASON)] = ""
    """Why; at most 2,000 characters."""


@dataclass
class LinkDecision:
    """The form of an approval link: who decides, and why (both optional).

    ``csrf_token``: the token of the link's page; required when a browser posts it
    (``curl -d by=ana URL`` need not send it: the link's token is the credential).
    """

    by: str = ""
    reason: str = ""
    csrf_token: str = ""


LinkFormBody = Annotated[LinkDecision, Body(media_type=RequestEncodingType.URL_ENCODED)]


class ApprovalView(msgspec.Struct, frozen=True, kw_only=True):
    """An approval as the API shows it (without its token)."""

    id: uuid.UUID
    firing_id: uuid.UUID
    rule: str
    index: int
    title: str
    state: ApprovalState
    """``pending`` (its request went out; waiting for a decision), ``sending``,
    ``request_failed``, ``request_given_up``, or the decision."""
    requested_at: datetime
    """When the ``approve`` action first ran (the request may not have gone out)."""
    sent_at: datetime | None
    """When its request went out; ``null``: it has not."""
    request_state: ApprovalRequestState
    request_error: str | None
    """Why its request could not be sent (the last attempt's error)."""
    attempts: int
    """Attempts of the ``approve`` action so far."""
    retry_at: datetime | None
    """When a failed request is tried again."""
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
        return cls(state=approval.state, **fields)


class Decided(ApprovalView, frozen=True, kw_only=True):
    """A decision's answer: the approval, decided, and what the decision did."""

    effect: str
    """What happens now, in words (``the actions after it run now``, ...)."""

    @classmethod
    def of(cls, approval: Approval) -> Decided:
        """The answer for ``approval``, just decided."""
        fields = msgspec.structs.asdict(approval)
        fields.pop("token")
        return cls(state=approval.state, effect=effect(approval), **fields)


def _conflict(exc: ApprovalClosed) -> Response[dict[str, Any]]:
    return problem(409, str(exc))


def _not_found() -> Template:
    return link_page(404, "No such approval", "The link is wrong or incomplete.")


def _given_up(exc: ApprovalGivenUp) -> Template:
    return link_page(409, "Nothing to decide", str(exc))


def _decided(approval: Approval) -> Template:
    when = f" at {approval.decided_at:%Y-%m-%d %H:%M} UTC" if approval.decided_at else ""
    return link_page(
        409,
        "Already decided",
        f"{approval.title} (rule {approval.rule}) was {approval.decision} "
        f"by {approval.decided_by}{when}.",
    )


def _link_csrf(request: Request[Any, Any, Any], token: str) -> str:
    """The CSRF token of an approval link's form (bound to the link's own token)."""
    return signer_of(request).csrf(f"approval-link:{token}")


def _form(request: Request[Any, Any, Any], approval: Approval, *, approve: bool) -> Template:
    verb = "Approve" if approve else "Reject"
    then = "the actions after it run" if approve else "the actions after it are cancelled"
    lines = [f"Rule {approval.rule} asks: {approval.title}", f"{verb}: {then}."]
    if approval.expires_at is not None:
        outcome = "approved" if approval.on_timeout == "approve" else "rejected"
        lines.append(f"Undecided at {approval.expires_at:%Y-%m-%d %H:%M} UTC it is {outcome}.")
    form = LinkForm(verb=verb, csrf_token=_link_csrf(request, approval.token))
    return link_page(200, f"{verb}? {approval.title}", *lines, form=form)


def _from_a_page(request: Request[Any, Any, Any]) -> bool:
    """Whether a browser sent the request (its headers say which page it came from)."""
    return "origin" in request.headers or "sec-fetch-site" in request.headers


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
        decided: Annotated[
            bool, QueryParameter(description="Decided and given-up ones too.")
        ] = False,
        firing_id: Annotated[
            str | None,
            QueryParameter(description="Only this firing's (its id, or a unique prefix)."),
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[ApprovalView]:
        """Open approvals (sent or still being sent), oldest request first.

        ``state`` says whether each was asked: ``pending`` once its request went out;
        ``sending``, ``request_failed`` (with ``request_error`` and ``retry_at``) or
        ``request_given_up`` before.
        """
        firing = None if firing_id is None else await ids.firing_id(services, firing_id)
        found = await services.store.approvals.list(
            pending=not decided, rule=rule, firing_id=firing, limit=limit
        )
        return [ApprovalView.of(approval) for approval in found]

    @post(
        "/firings/{firing_id:str}/approve",
        guards=[require_write],
        summary="Approve a firing",
        status_code=200,
    )
    async def approve_firing(
        self,
        firing_id: FromPath[str],
        services: ServicesDep,
        request: Request[Any, Any, Any],
        data: JSONBody[Decision | None] = None,
    ) -> Decided | Response[dict[str, Any]]:
        """Approve the firing's pending approval: the actions after it run.

        409 if it was decided already (saying by whom), or if its request was never
        sent and was given up (the actions after it were cancelled).
        """
        return await self._decide(services, request, firing_id, data, approve=True)

    @post(
        "/firings/{firing_id:str}/reject",
        guards=[require_write],
        summary="Reject a firing",
        status_code=200,
    )
    async def reject_firing(
        self,
        firing_id: FromPath[str],
        services: ServicesDep,
        request: Request[Any, Any, Any],
        data: JSONBody[Decision | None] = None,
    ) -> Decided | Response[dict[str, Any]]:
        """Reject the firing's pending approval: the actions after it are cancelled.

        409 if it was decided already, or if its request was given up.
        """
        return await self._decide(services, request, firing_id, data, approve=False)

    @get(
        "/approvals/{token:str}/approve",
        summary="Approve link: the form",
        media_type=MediaType.HTML,
    )
    async def approve_link(
        self, request: Request[Any, Any, Any], token: FromPath[str], services: ServicesDep
    ) -> Template:
        """The approve link of an approval request: the approval and a form; no decision."""
        return await self._show(request, services, token, approve=True)

    @get(
        "/approvals/{token:str}/reject", summary="Reject link: the form", media_type=MediaType.HTML
    )
    async def reject_link(
        self, request: Request[Any, Any, Any], token: FromPath[str], services: ServicesDep
    ) -> Template:
        """The reject link of an approval request: the approval and a form; no decision."""
        return await self._show(request, services, token, approve=False)

    @post(
        "/approvals/{token:str}/approve",
        summary="Approve through a link",
        media_type=MediaType.HTML,
        status_code=200,
    )
    async def approve_by_link(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        services: ServicesDep,
        data: LinkFormBody,
    ) -> Template:
        """Approve (the token is the credential); ``by`` and ``reason`` are form fields."""
        return await self._link(request, services, token, data, approve=True)

    @post(
        "/approvals/{token:str}/reject",
        summary="Reject through a link",
        media_type=MediaType.HTML,
        status_code=200,
    )
    async def reject_by_link(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        services: ServicesDep,
        data: LinkFormBody,
    ) -> Template:
        """Reject (the token is the credential); ``by`` and ``reason`` are form fields."""
        return await self._link(request, services, token, data, approve=False)

    async def _decide(
        self,
        services: Any,
        request: Request[Any, Any, Any],
        firing_id: str,
        data: Decision | None,
        *,
        approve: bool,
    ) -> Decided | Response[dict[str, Any]]:
        data = data or Decision()
        key = current_key(request)
        by = data.by or (key.name if key is not None else "api")
        firing = await ids.firing_id(services, firing_id)
        try:
            approval = await decide(
                services, firing_id=firing, approve=approve, by=by, reason=data.reason
            )
        except ApprovalClosed as exc:
            return _conflict(exc)
        except NotFound as exc:
            if exc.kind != "approval":
                raise
            raise await ids.approval_not_found(services, firing) from None
        return Decided.of(approval)

    async def _show(
        self, request: Request[Any, Any, Any], services: Any, token: str, *, approve: bool
    ) -> Template:
        try:
            approval = await services.store.approvals.by_token(token)
        except NotFound:
            return _not_found()
        if approval.decision is not None:
            return _decided(approval)
        if approval.request_state == "given_up":
            return _given_up(ApprovalGivenUp(approval))
        return _form(request, approval, approve=approve)

    async def _link(
        self,
        request: Request[Any, Any, Any],
        services: Any,
        token: str,
        data: LinkDecision,
        *,
        approve: bool,
    ) -> Template:
        try:
            await services.store.approvals.by_token(token)
        except NotFound:
            return _not_found()
        if _from_a_page(request) and not hmac.compare_digest(
            data.csrf_token, _link_csrf(request, token)
        ):
            return link_page(
                403,
                "The form expired",
                "Open the link again and decide from the page it shows.",
            )
        by = data.by.strip()[:_MAX_NAME] or "approval link"
        try:
            approval = await decide(
                services,
                token=token,
                approve=approve,
                by=by,
                reason=data.reason.strip()[:_MAX_REASON],
            )
        except NotFound:
            return _not_found()
        except ApprovalGivenUp as exc:
            return _given_up(exc)
        except ApprovalClosed as exc:
            return _decided(exc.approval)
        verb = "Approved" if approve else "Rejected"
        return link_page(
            200, f"{verb}: {approval.title}", f"Rule {approval.rule}: {effect(approval)}. By {by}."
        )
