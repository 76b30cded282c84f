"""Where a webhook goes: its origin, and the patterns operators write to name origins.

An :class:`Origin` is a URL's ``scheme://host:port`` (the port filled in from the scheme
when the URL leaves it out), lower-cased, the host in its ASCII (IDNA) form: two URLs
reach the same server exactly when their origins are equal. Pacing keys its
per-destination windows by it (:mod:`~interlock.service.actions.pacing`); the
allow-list compares with it (:mod:`~interlock.service.actions.destinations`).

A :class:`DestinationPattern` is how settings name origins
(``actions.webhooks.allowed_destinations``, ``actions.webhooks.host_concurrency``):

================================  ===================================================
``hooks.example.com``             that host, either scheme, any port
``hooks.example.com:8443``        that host on that port, either scheme
``*.corp.example``                any host *under* corp.example (not corp.example)
``https://hooks.example.com``     exactly that origin (port 443)
``https://hooks.example.com:8443``  exactly that origin
``https://*.corp.example``        https, port 443, any host under corp.example
``10.0.0.7``, ``[fd00::7]:8080``  addresses as hosts
================================  ===================================================

Only stdlib parsing here: the settings import this module to check patterns at start.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = ["DEFAULT_PORTS", "DestinationPattern", "Origin", "origin_of"]

DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$")


class Origin(NamedTuple):
    """``scheme://host:port``, normalized (see the module docstring)."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@functools.lru_cache(maxsize=4096)  # a rule calls the same few URLs again and again
def origin_of(url: str) -> Origin | None:
    """The origin of an ``http(s)`` URL; ``None`` if it has none (no host, other scheme).

    Parsed as the standard library and httpx parse (RFC 3986): the authority ends at the
    first ``/``, ``?`` or ``#``, and its last ``@`` ends the user information.
    """
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        port = parts.port
        host = _host(parts.hostname or "")
    except ValueError:  # a port that is not a number, a malformed IPv6 address
        return None
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return Origin(scheme, host, port if port is not None else DEFAULT_PORTS[scheme])


class DestinationPattern(NamedTuple):
    """One entry of a destination setting (see the module docstring for the forms)."""

    text: str
    """As written (for messages)."""
    host: str
    """The host, or for a wildcard the domain under which hosts match."""
    wildcard: bool
    scheme: str | None
    """``None``: either scheme."""
    port: int | None
    """``None``: any port."""

    @classmethod
    def parse(cls, text: str) -> DestinationPattern:
        """Read one entry.

        Raises:
            ValueError: it is not one of the forms above; the message says why.
        """
        written = text.strip()
        scheme: str | None = None
        rest = written
        if "://" in written:
            scheme, _, rest = written.partition("://")
            scheme = scheme.lower()
            if scheme not in DEFAULT_PORTS:
                raise ValueError(f"{text!r}: the scheme must be http or https")
            rest = rest.removesuffix("/")
            if any(c in rest for c in "/?#@"):
                raise ValueError(
                    f"{text!r}: an origin is scheme://host[:port], with no path, query or user"
                )
        elif any(c in rest for c in "/?#@"):
            raise ValueError(f"{text!r}: write a host (hooks.example.com) or an origin")
        wildcard = rest.startswith("*.")
        try:
            parts = urlsplit(f"//{rest.removeprefix('*.')}")
            port = parts.port
            host = _host(parts.hostname or "")
        except ValueError as exc:
            raise ValueError(f"{text!r}: not a host[:port] ({exc})") from None
        if not host or "*" in host or not _valid_host(host):
            raise ValueError(
                f"{text!r}: not a host name or address (a wildcard is allowed only as the "
                "first label: *.corp.example)"
            )
        if wildcard and host.count(".") < 1:
            raise ValueError(f"{text!r}: a wildcard needs a domain of two labels at least")
        if port is None and scheme is not None:
            port = DEFAULT_PORTS[scheme]
        return cls(written, host, wildcard, scheme, port)

    def matches(self, origin: Origin) -> bool:
        """Whether ``origin`` is one this entry names."""
        if self.scheme is not None and origin.scheme != self.scheme:
            return False
        if self.port is not None and origin.port != self.port:
            return False
        if self.wildcard:
            return origin.host.endswith(f".{self.host}")
        return origin.host == self.host

    @property
    def specificity(self) -> tuple[int, int, int, int]:
        """A sort key, most specific last: exact host, scheme, port, longest domain."""
        return (
            0 if self.wildcard else 1,
            1 if self.scheme is not None else 0,
            1 if self.port is not None else 0,
            len(self.host),
        )


def _host(host: str) -> str:
    """Lower case, no trailing dot, IDNA (ASCII) form."""
    host = host.lower().rstrip(".")
    if host and not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"the host is not a valid name ({exc})") from None
    return host


def _valid_host(host: str) -> bool:
    if ":" in host:  # an IPv6 address, already checked by urlsplit's brackets
        return True
    return all(_LABEL.match(label) for label in host.split("."))
