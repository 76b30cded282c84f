"""``/approvals``: the approvals waiting, decided with a name and a reason; the recent ones.

Deciding is a form per approval (``POST /approvals/<firing id>/approve`` or ``reject``,
scope ``write``): without JavaScript the answer is a redirect back here; with htmx, the
approval's row, decided. The links sent in an approval request (``/api/approvals/<token>/
approve``) are pages of their own (:mod:`interlock.service.api.approvals`), rendered
with :func:`link_page`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Final

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from interlock.service.actions.approvals import decide
from interlock.service.api.deps import ServicesDep
from interlock.service.context import Services
from interlock.service.store import ApprovalClosed
from interlock.service.ui.pages.rows import ApprovalRow
from interlock.service.ui.render import SECURITY_HEADERS, page
from interlock.service.ui.security import ui_read, ui_write, viewer_of

__all__ = [
    "MAX_NAME",
    "MAX_REASON",
    "ApprovalsController",
    "ApprovalsPage",
    "DecisionForm",
    "LinkForm",
    "LinkPage",
    "build_approvals",
    "link_page",
]

MAX_NAME: Final = 200
MAX_REASON: Final = 2000
_RECENT = 50


@dataclass(frozen=True, slots=True)
class ApprovalsPage:
    """The approvals page."""

    waiting: tuple[ApprovalRow, ...]
    decided: tuple[ApprovalRow, ...]
    max_name: int
    max_reason: int
    notice: str | None = None


@dataclass
class DecisionForm:
    """What a decision's form sends."""

    by: str = ""
    reason: str = ""
    csrf_token: str = ""


async def build_approvals(services: Services, *, notice: str | None = None) -> ApprovalsPage:
    """Open approvals, oldest first, and the most recently decided ones."""
    waiting = await services.store.approvals.list(pending=True, limit=500)
    everything = await services.store.approvals.list(pending=False, limit=2000)
    decided = sorted(
        (a for a in everything if a.decision is not None and a.decided_at is not None),
        key=lambda a: a.decided_at or a.requested_at,
        reverse=True,
    )
    return ApprovalsPage(
        waiting=tuple(ApprovalRow.of(a) for a in waiting),
        decided=tuple(ApprovalRow.of(a) for a in decided[:_RECENT]),
        max_name=MAX_NAME,
        max_reason=MAX_REASON,
        notice=notice,
    )


class ApprovalsController(Controller):
    """Approvals waiting, and deciding them."""

    path = "/approvals"
    include_in_schema = False

    @get("/", guards=[ui_read], name="ui-approvals")
    async def approvals(self, request: Request[Any, Any, Any], services: ServicesDep) -> Template:
        """The approvals waiting for a decision, and the recent decisions."""
        return await page(
            request,
            await build_approvals(services),
            template="ui/approvals.html",
            section="approvals",
            title="Approvals",
        )

    @post("/{firing_id:uuid}/approve", guards=[ui_write], name="ui-approve", status_code=303)
    async def approve(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        firing_id: FromPath[uuid.UUID],
        data: Annotated[DecisionForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        """Approve: the actions after the approval step run."""
        return await self._decide(request, services, firing_id, data, approve=True)

    @post("/{firing_id:uuid}/reject", guards=[ui_write], name="ui-reject", status_code=303)
    async def reject(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        firing_id: FromPath[uuid.UUID],
        data: Annotated[DecisionForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        """Reject: the actions after the approval step are cancelled."""
        return await self._decide(request, services, firing_id, data, approve=False)

    async def _decide(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        firing_id: uuid.UUID,
        data: DecisionForm,
        *,
        approve: bool,
    ) -> Template | Redirect:
        viewer = await viewer_of(request)
        by = data.by.strip()[:MAX_NAME] or (viewer.name if viewer is not None else "web UI")
        try:
            approval = await decide(
                services,
                firing_id=firing_id,
                approve=approve,
                by=by,
                reason=data.reason.strip()[:MAX_REASON],
            )
            status = 200
        except ApprovalClosed as exc:
            approval, status = exc.approval, 409
        if request.headers.get("hx-request") == "true":
            return await page(
                request,
                ApprovalRow.of(approval),
                template="ui/approvals/_row.html",
                section="approvals",
                title="Approvals",
                status_code=status,
            )
        if status == 409:
            notice = (
                f"{approval.title} (rule {approval.rule}) was decided already: "
                f"{approval.decision or 'its request was given up'}"
                + (f" by {approval.decided_by}" if approval.decided_by else "")
                + "."
            )
            return await page(
                request,
                await build_approvals(services, notice=notice),
                template="ui/approvals.html",
                section="approvals",
                title="Approvals",
                status_code=409,
            )
        return Redirect("/approvals", status_code=303)


@dataclass(frozen=True, slots=True)
class LinkForm:
    """The form of an approval link's page."""

    verb: str
    """``Approve`` or ``Reject``."""
    csrf_token: str
    max_name: int = MAX_NAME
    max_reason: int = MAX_REASON


@dataclass(frozen=True, slots=True)
class LinkPage:
    """A page an approval link shows (no session, no navigation: the token decides)."""

    title: str
    paragraphs: tuple[str, ...]
    form: LinkForm | None = None


def link_page(status: int, title: str, *paragraphs: str, form: LinkForm | None = None) -> Template:
    """An approval link's page (everything escaped by the template)."""
    return Template(
        "ui/approval_link.html",
        context={"page": LinkPage(title=title, paragraphs=paragraphs, form=form)},
        status_code=status,
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
