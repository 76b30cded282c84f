"""The web UI ``interlock server`` serves at ``/``: server-rendered pages, live over SSE.

Jinja templates (``templates/ui/``) rendered by the service, a vendored htmx 2.0 and its
SSE extension (``static/vendor/``), no Node at build or run time. Pages read without
JavaScript; with it, regions refresh in place and live parts follow Server-Sent Events.

- :mod:`.routes`: the router, mounted by :func:`interlock.service.api.app.create_app`;
- :mod:`.pages`: a module per page (contexts, builders, handlers);
- :mod:`.security`: who is looking (API key, session cookie, local mode) and CSRF;
- :mod:`.stream`: SSE plumbing; :mod:`.render`: the Jinja environment and page answers;
- :mod:`.assets`: static files with digests in their URLs.

:func:`openapi_plugins` serves ``/schema`` from the service's own copy of Redoc, so the
API's documentation works offline too.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin

from interlock.service.ui.assets import REDOC, static_url
from interlock.service.ui.render import template_config

__all__ = ["OfflineRedoc", "openapi_plugins", "template_config"]


class OfflineRedoc(OpenAPIRenderPlugin):
    """Redoc from the service's static files, reading the schema's JSON by URL.

    No CDN script, no web fonts, no inline script: ``<redoc spec-url=...>`` and one
    ``<script src>`` of this origin.
    """

    def __init__(self, *, path: str = "/") -> None:
        super().__init__(path=path, favicon="", style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The page: the schema's title, the Redoc element and its script."""
        from html import escape  # noqa: PLC0415

        title = escape(str(openapi_schema.get("info", {}).get("title", "API")))
        spec = escape(self.get_openapi_json_route(request))
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title} API</title></head><body>"
            f'<redoc spec-url="{spec}"></redoc>'
            f'<script src="{escape(static_url(REDOC))}"></script>'
            "</body></html>"
        ).encode()


def openapi_plugins() -> list[OpenAPIRenderPlugin]:
    """``/schema``: Redoc served locally; ``/schema/openapi.json``: the document."""
    return [OfflineRedoc(path="/"), JsonRenderPlugin(path="/openapi.json")]
