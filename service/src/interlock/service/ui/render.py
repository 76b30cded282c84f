"""Rendering: the UI's own Jinja environment, the layout's context, and page answers.

Every page answers through :func:`page`: the template gets exactly two names, ``page``
(the page's frozen context, built by its ``build_<page>``) and ``chrome`` (what the
layout needs: who is looking, the CSRF token, the section, the assets). An htmx request
to the same URL gets the region's fragment instead of the whole page (``Vary:
HX-Request``); a request restoring history gets the page.

The environment loads ``templates/`` from the package, escapes everything (rule text
and action templates are shown, never rendered), and fails on an undefined name.
Filters format, never compute: ``iso``, ``utc``, ``duration``, ``count``, ``json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request
from litestar.datastructures import Cookie
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template import TemplateConfig

from interlock.service.ui.assets import HTMX, HTMX_SSE, static_url
from interlock.service.ui.security import Viewer, csrf_token, viewer_of

__all__ = [
    "SECURITY_HEADERS",
    "Chrome",
    "Stamp",
    "environment",
    "page",
    "template_config",
]

TEMPLATES_DIR: Final = Path(__file__).parent / "templates"
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
"""Headers of every page: nothing but this origin's scripts, styles and connections."""

SECTIONS: Final = (
    ("overview", "Overview", "/"),
    ("events", "Events", "/events"),
    ("rules", "Rules", "/rules"),
    ("sla", "SLA board", "/sla"),
    ("firings", "Firings", "/firings"),
    ("runs", "Runs", "/runs"),
    ("approvals", "Approvals", "/approvals"),
    ("channels", "Channels", "/channels"),
)


@dataclass(frozen=True, slots=True)
class NavItem:
    """A link of the navigation bar."""

    key: str
    label: str
    href: str
    current: bool


@dataclass(frozen=True, slots=True)
class Chrome:
    """What the layout shows around a page."""

    title: str
    """The document's title (the page's ``<h1>`` is the page's own)."""
    section: str
    nav: tuple[NavItem, ...]
    viewer: Viewer
    csrf_token: str
    css: str
    script: str
    htmx: str
    htmx_sse: str


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _utc(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True, slots=True)
class Stamp:
    """A time ready to show: ISO 8601 for ``datetime=`` and the UTC text (long lists)."""

    iso: str
    utc: str

    @classmethod
    def of(cls, value: datetime | None) -> Stamp | None:
        """The stamp of ``value`` (``None`` stays ``None``)."""
        if value is None:
            return None
        return cls(iso=_iso(value), utc=_utc(value))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _count(value: int) -> str:
    return f"{value:,}"


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def environment() -> Environment:
    """The UI's Jinja environment (autoescape on, undefined names are errors)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        enable_async=False,
    )
    env.filters.update(iso=_iso, utc=_utc, duration=_duration, count=_count, json=_json)
    env.globals["static_url"] = static_url
    return env


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """The application's template configuration: the UI's environment."""
    return TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment()))


def chrome(
    request: Request[Any, Any, Any], viewer: Viewer, section: str, title: str
) -> tuple[Chrome, Cookie | None]:
    """The layout's context for ``request``, and the CSRF cookie to set if new."""
    token, cookie = csrf_token(request)
    nav = tuple(
        NavItem(key=key, label=label, href=href, current=key == section)
        for key, label, href in SECTIONS
    )
    if viewer.can("admin"):
        nav += (NavItem(key="keys", label="API keys", href="/keys", current=section == "keys"),)
    return (
        Chrome(
            title=title,
            section=section,
            nav=nav,
            viewer=viewer,
            csrf_token=token,
            css=static_url("ui.css"),
            script=static_url("ui.js"),
            htmx=static_url(HTMX),
            htmx_sse=static_url(HTMX_SSE),
        ),
        cookie,
    )


def is_fragment(request: Request[Any, Any, Any]) -> bool:
    """Whether to answer with the region only: an htmx request, not a history restore."""
    headers = request.headers
    return (
        headers.get("hx-request") == "true" and headers.get("hx-history-restore-request") != "true"
    )


async def page(
    request: Request[Any, Any, Any],
    context: Any,
    *,
    template: str,
    fragment: str | None = None,
    section: str,
    title: str,
    status_code: int = 200,
    cookies: list[Cookie] | None = None,
) -> Template:
    """The page (or, for htmx, its region ``fragment``) rendered with ``context``."""
    viewer = await viewer_of(request)
    if viewer is None:  # the guards let no page through without one
        raise RuntimeError("a page was rendered for nobody")
    layout, cookie = chrome(request, viewer, section, title)
    name = fragment if fragment is not None and is_fragment(request) else template
    all_cookies = list(cookies or [])
    if cookie is not None:
        all_cookies.append(cookie)
    return Template(
        name,
        context={"page": context, "chrome": layout},
        status_code=status_code,
        headers={**SECURITY_HEADERS, "Vary": "HX-Request, Cookie", "Cache-Control": "no-store"},
        cookies=all_cookies,
    )


def countdown_text(target: datetime, now: datetime) -> str:
    """``in 4 min 10 s`` before ``target``, ``4 min 10 s ago`` after (as ui.js keeps it)."""
    seconds = (target - now).total_seconds()
    whole = int(abs(seconds))
    if whole < 60:
        text = f"{whole} s"
    elif whole < 3600:
        text = f"{whole // 60} min {whole % 60} s"
    elif whole < 48 * 3600:
        text = f"{whole // 3600} h {whole % 3600 // 60} min"
    else:
        text = f"{whole // 86400} days"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def fragment(request: Request[Any, Any, Any], name: str, **context: Any) -> str:
    """The partial ``name`` rendered to text: a stream's message, from a page's partial."""
    engine = request.app.template_engine
    if engine is None:  # pragma: no cover - create_app always configures it
        raise RuntimeError("the application has no template engine")
    text: str = engine.get_template(name).render(**context)
    return text
