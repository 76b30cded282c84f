"""Sending one notification through Apprise, off the event loop, without leaking its URL.

Apprise is synchronous and reports failure by returning ``False``; :func:`send` runs it
in a thread under a time limit and turns every failure into an
:class:`~interlock.sdk.errors.ActionFailed` that names the target (a
channel's name, or "an Apprise URL" with its scheme), never the URL. A thread that
outlives the time limit is left to finish on its own (Apprise has no cancellation); its
own request timeouts end it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
import warnings
from typing import TYPE_CHECKING

from interlock.sdk.errors import ActionFailed
from interlock.service.actions.redact import hiding, redact_text

if TYPE_CHECKING:
    import apprise

__all__ = ["describe_target", "send"]

logger = logging.getLogger(__name__)

if sys.version_info < (3, 13):
    # Apprise's e-mail plugin imports PGPy, which imports ``imghdr`` (deprecated since
    # 3.11, warning on import) when Apprise loads its plugins in a worker thread. Import
    # it once here, quietly, so that warning is neither logged nor raised.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        importlib.import_module("imghdr")


def describe_target(channel: str | None, url: str | None) -> str:
    """How errors name a target: ``channel 'ops'`` or ``an Apprise URL (json://)``."""
    if channel:
        return f"channel {channel!r}"
    scheme = (url or "").partition("://")[0] or "?"
    return f"an Apprise URL ({scheme}://)"


def _apprise() -> apprise.Apprise:
    # Imported on first use: Apprise and its plugins take ~0.2 s to import, a large
    # share of the service's start.
    import apprise  # noqa: PLC0415

    return apprise.Apprise()


def _notify(url: str, title: str, body: str) -> tuple[bool, str]:
    with hiding(url):
        client = _apprise()
        if not client.add(url):
            return False, "is not a valid Apprise URL"
        sent = bool(client.notify(title=title, body=body or title))
        return sent, "" if sent else "was not accepted by the service"


async def send(url: str, *, title: str, body: str, timeout: float, target: str) -> None:
    """Send ``title``/``body`` to the Apprise ``url``; ``target`` names it in errors.

    Raises:
        ActionFailed: not sent; not retryable when the URL is not a valid Apprise URL.
    """
    try:
        ok, why = await asyncio.wait_for(
            asyncio.to_thread(_notify, url, title, body), timeout=timeout
        )
    except TimeoutError:
        raise ActionFailed(f"notify {target}: no answer within {timeout:g} s") from None
    except Exception as exc:  # noqa: BLE001 - any Apprise failure, redacted
        message = redact_text(f"{type(exc).__name__}: {exc}", url)
        raise ActionFailed(f"notify {target}: Apprise failed ({message})") from None
    if not ok:
        retryable = why != "is not a valid Apprise URL"
        raise ActionFailed(f"notify {target}: {why}", retryable=retryable)
