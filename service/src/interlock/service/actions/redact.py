"""Keeping secrets out of messages and logs: URLs shown by host, Apprise URLs never shown.

- :func:`url_origin` is what an error may say about a URL: ``https://host:port``, never
  its path, query or credentials (a webhook's token often sits in either).
- :func:`hiding` registers an Apprise URL as secret while a notification is being sent:
  :class:`SecretFilter`, installed on the loggers of Apprise and of the HTTP libraries it
  uses (which log URLs at DEBUG), replaces every fragment of it in their records with
  ``***`` before any handler sees them.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

__all__ = ["SecretFilter", "hiding", "redact_text", "url_origin"]

_FRAGMENT_SPLIT = re.compile(r"[/:@?&=#,]+")
_MIN_FRAGMENT = 4
_LOGGERS = ("apprise", "urllib3.connectionpool", "requests", "httpx", "httpcore")


@functools.lru_cache(maxsize=1024)  # webhooks call the same few URLs again and again
def url_origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: safe to show (no path, query or password)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an invalid URL)"
    return f"{parts.scheme or '?'}://{host}{port}"


def _fragments(secret: str) -> set[str]:
    rest = secret.partition("://")[2] or secret
    pieces = {secret, rest}
    pieces.update(piece for piece in _FRAGMENT_SPLIT.split(rest) if len(piece) >= _MIN_FRAGMENT)
    return {piece for piece in pieces if piece}


class SecretFilter(logging.Filter):
    """Replaces registered secrets (and every longer fragment of them) with ``***``."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: dict[str, int] = {}

    def add(self, secret: str) -> None:
        """Hide ``secret`` until :meth:`discard` is called as often as this."""
        with self._lock:
            for piece in _fragments(secret):
                self._secrets[piece] = self._secrets.get(piece, 0) + 1

    def discard(self, secret: str) -> None:
        """Stop hiding ``secret`` (once per :meth:`add`)."""
        with self._lock:
            for piece in _fragments(secret):
                left = self._secrets.get(piece, 0) - 1
                if left > 0:
                    self._secrets[piece] = left
                else:
                    self._secrets.pop(piece, None)

    def redact(self, text: str) -> str:
        """``text`` with every registered secret replaced by ``***``."""
        with self._lock:
            pieces = sorted(self._secrets, key=len, reverse=True)
        for piece in pieces:
            if piece in text:
                text = text.replace(piece, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message without secrets (never drops a record)."""
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: keep only its template
            message = str(record.msg)
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            text = self.redact(str(record.exc_info[1]))
            if text != str(record.exc_info[1]):
                record.exc_info = None
                record.exc_text = None
                record.msg = f"{record.msg} ({text})"
        return True


_FILTER = SecretFilter()
_installed = False
_install_lock = threading.Lock()


def _install() -> None:
    global _installed  # noqa: PLW0603 - installed once per process
    with _install_lock:
        if _installed:
            return
        for name in _LOGGERS:
            logging.getLogger(name).addFilter(_FILTER)
        _installed = True


@contextmanager
def hiding(secret: str) -> Iterator[None]:
    """Keep ``secret`` out of the logs of Apprise and HTTP libraries for the block."""
    _install()
    _FILTER.add(secret)
    try:
        yield
    finally:
        _FILTER.discard(secret)


def redact_text(text: str, secret: str) -> str:
    """``text`` with ``secret`` and its fragments replaced by ``***``."""
    for piece in sorted(_fragments(secret), key=len, reverse=True):
        text = text.replace(piece, "***")
    return text
