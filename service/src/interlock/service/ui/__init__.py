"""The web UI ``interlock server`` serves at ``/``: server-rendered pages, live over SSE.

Jinja templates (``templates/ui/``) rendered by the service, a vendored htmx 2.0 and its
SSE extension (``static/vendor/``), no Node at build or run time. Pages read without
JavaScript; with it, regions refresh in place and live parts follow Server-Sent Events.

- :mod:`.routes`: the router, mounted by :func:`interlock.service.api.app.create_app`;
- :mod:`.pages`: a module per page (contexts, builders, handlers);
- :mod:`.security`: who is looking (API key, session cookie, local mode) and CSRF;
- :mod:`.stream`: SSE plumbing; :mod:`.render`: the Jinja environment and page answers;
- :mod:`.assets`: static files with digests in their URLs.

:func:`openapi_plugins` serves ``/schema`` from the service's own copy of RapiDoc, so the
API's documentation works offline too.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin

from interlock.service.ui.assets import API_DOCS, static_url
from interlock.service.ui.render import template_config

__all__ = ["OfflineDocs", "openapi_plugins", "template_config"]

_FONTS = (
    'regular-font="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" '
    'mono-font="ui-monospace, Menlo, Consolas, monospace" load-fonts="false"'
)


class OfflineDocs(OpenAPIRenderPlugin):
    """RapiDoc from the service's static files, reading the schema's JSON by URL.

    No CDN script, no web fonts (``load-fonts="false"``: its default font comes from
    Google; the system's are named instead), no inline script: ``<rapi-doc spec-url=...>`` and one
    ``<script src>`` of this origin. (Redoc 2 was tried first: its sidebar loads a logo
    from its CDN, unconditionally.)
    """

    def __init__(self, *, path: str = "/") -> None:
        super().__init__(path=path, favicon="", style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The page: the schema's title, the RapiDoc element and its script."""
        from html import escape  # noqa: PLC0415

        title = escape(str(openapi_schema.get("info", {}).get("title", "API")))
        spec = escape(self.get_openapi_json_route(request))
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title} API</title></head><body>"
            f'<rapi-doc spec-url="{spec}" {_FONTS} show-header="false" render-style="read" '
            'allow-server-selection="false" theme="light"></rapi-doc>'
            f'<script src="{escape(static_url(API_DOCS))}"></script>'
            "</body></html>"
        ).encode()


def openapi_plugins() -> list[OpenAPIRenderPlugin]:
    """``/schema``: RapiDoc served locally; ``/schema/openapi.json``: the document."""
    return [OfflineDocs(path="/"), JsonRenderPlugin(path="/openapi.json")]
