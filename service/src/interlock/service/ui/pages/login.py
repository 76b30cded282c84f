"""``/login`` and ``/logout``: an API key in exchange for a session cookie, and back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from interlock.service.api.auth import KEY_CACHE_STATE, in_local_mode
from interlock.service.api.key_cache import KeyCache
from interlock.service.ui.render import SECURITY_HEADERS
from interlock.service.ui.security import (
    CSRF_COOKIE,
    csrf_token,
    safe_next,
    session_cookie,
    signer_of,
    ui_read,
)

__all__ = ["LoginController", "LoginForm", "LoginPage"]


@dataclass(frozen=True, slots=True)
class LoginPage:
    """The sign-in form."""

    title: str
    next: str
    csrf_token: str
    error: str | None = None


@dataclass
class LoginForm:
    """What the sign-in form sends."""

    token: str = ""
    next: str = "/"
    csrf_token: str = ""


def _form(
    request: Request[Any, Any, Any], target: str, *, error: str | None = None, status: int = 200
) -> Template:
    token, cookie = csrf_token(request)
    return Template(
        "ui/login.html",
        context={"page": LoginPage(title="Sign in", next=target, csrf_token=token, error=error)},
        status_code=status,
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
        cookies=[cookie] if cookie is not None else [],
    )


class LoginController(Controller):
    """Signing in and out."""

    include_in_schema = False

    @get("/login", name="ui-login")
    async def login_form(
        self,
        request: Request[Any, Any, Any],
        next_page: Annotated[str | None, QueryParameter(name="next")] = None,
    ) -> Template | Redirect:
        """The sign-in form (in local mode there is nothing to sign in to: the overview)."""
        if await in_local_mode(request.app):
            return Redirect(safe_next(next_page), status_code=303)
        return _form(request, safe_next(next_page))

    @post("/login", name="ui-login-submit", status_code=303)
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        """Trade an API key for a session cookie; back to the form with a reason if not."""
        target = safe_next(data.next)
        signer = signer_of(request)
        if not signer.csrf_valid(request.cookies.get(CSRF_COOKIE), data.csrf_token):
            return _form(request, target, error="The form expired: try again.", status=403)
        cache: KeyCache = request.app.state[KEY_CACHE_STATE]
        key = await cache.verify(data.token.strip()) if data.token.strip() else None
        if key is None or not key.allows("read"):
            reason = "That key is not valid (unknown, malformed or revoked)."
            if key is not None:
                scopes = ", ".join(key.scopes)
                reason = f"Key {key.name} ({key.prefix}) cannot read: it has scope {scopes}."
            return _form(request, target, error=reason, status=401)
        return Redirect(target, status_code=303, cookies=[session_cookie(signer, key.id)])

    @post("/logout", guards=[ui_read], name="ui-logout", status_code=303)
    async def logout(self, request: Request[Any, Any, Any]) -> Redirect:
        """End the session."""
        return Redirect(
            "/login", status_code=303, cookies=[session_cookie(signer_of(request), None)]
        )
