"""Settings of a producer: how to reach NATS, who is publishing, and where to spool.

Settings are plain frozen values built once at start and passed in; the library never
reads the environment by itself. :meth:`PublisherConfig.from_env` is the one place that
does, for entry points (the command line, :func:`~interlock.sdk.emit`) that are told to.

Environment variables read by :meth:`PublisherConfig.from_env`:

===============================  ==========================================================
``INTERLOCK_NATS_URL``           comma-separated server URLs (``nats://127.0.0.1:4222``)
``INTERLOCK_NATS_USER``          user name, with ``INTERLOCK_NATS_PASSWORD``
``INTERLOCK_NATS_TOKEN``         authentication token
``INTERLOCK_NATS_CREDENTIALS``   path of a ``.creds`` file (JWT + nkey seed)
``INTERLOCK_NATS_TLS_CA``        CA bundle to verify the server
``INTERLOCK_NATS_TLS_CERT``      client certificate, with ``INTERLOCK_NATS_TLS_KEY``
``INTERLOCK_SOURCE``             the ``source`` stamped on events (default ``sdk``)
``INTERLOCK_PUBLISH_TIMEOUT``    seconds a producer may be blocked (default 2)
``INTERLOCK_SPOOL_DIR``          spool directory (default ``$XDG_STATE_HOME/interlock/spool``)
``INTERLOCK_SPOOL_MAX_BYTES``    spool size limit in bytes (default 256 MiB)
===============================  ==========================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from interlock.sdk.errors import ConfigurationError

__all__ = ["DEFAULT_NATS_URL", "NatsOptions", "PublisherConfig", "default_spool_dir"]

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


def default_spool_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return ``$XDG_STATE_HOME/interlock/spool`` (``~/.local/state`` when unset)."""
    environ = os.environ if environ is None else environ
    state = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "interlock" / "spool"


def _check_credentials(path: Path) -> None:
    """Refuse a ``.creds`` file without a JWT and a seed (nats-py would loop forever)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError("nats.credentials_file", f"cannot read {path}: {exc}") from exc
    for marker in ("BEGIN NATS USER JWT", "BEGIN USER NKEY SEED"):
        if marker not in text:
            raise ConfigurationError(
                "nats.credentials_file",
                f"{path} is not a NATS credentials file (no '-----{marker}-----' block); "
                "create one with `nsc generate creds`",
            )


class NatsOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How to reach and authenticate to NATS."""

    servers: tuple[str, ...] = (DEFAULT_NATS_URL,)
    """Server URLs; the client picks one and fails over to the others."""
    user: str | None = None
    password: str | None = None
    token: str | None = None
    credentials_file: Path | None = None
    """A ``.creds`` file holding a user JWT and nkey seed (decentralized auth)."""
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    name: str = "interlock"
    """Connection name, shown by ``nats-server`` monitoring."""
    randomize: bool = True
    """Try the servers in random order (spreads clients); ``False`` keeps the list's order."""
    connect_timeout: float = 2.0
    reconnect_wait: float = 0.5
    """Seconds between reconnection attempts while a server is unreachable."""

    def __post_init__(self) -> None:
        if not self.servers:
            raise ConfigurationError("nats.servers", "at least one server URL is required")
        for url in self.servers:
            if "://" not in url:
                raise ConfigurationError(
                    "nats.servers", f"{url!r} is not a URL (use e.g. nats://host:4222)"
                )
        if (self.user is None) != (self.password is None):
            raise ConfigurationError("nats.user", "user and password go together")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ConfigurationError("nats.tls_cert_file", "a client certificate needs its key")
        for field in ("credentials_file", "tls_ca_file", "tls_cert_file", "tls_key_file"):
            path = getattr(self, field)
            if path is not None and not Path(path).is_file():
                raise ConfigurationError(f"nats.{field}", f"{path} is not a readable file")
        if self.credentials_file is not None:
            _check_credentials(Path(self.credentials_file))


class PublisherConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a :class:`~interlock.sdk.Publisher` needs."""

    nats: NatsOptions = msgspec.field(default_factory=NatsOptions)
    source: str = "sdk"
    """Stamped on events that do not say who published them."""
    timeout: float = 2.0
    """Longest time a publish may block the producer before its events are spooled."""
    max_in_flight: int = 1024
    """Publishes awaiting their acknowledgement at once."""
    spool_dir: Path = msgspec.field(default_factory=default_spool_dir)
    spool_max_bytes: int = 256 * 1024 * 1024
    spool_fsync: bool = False
    """fsync every spooled batch: survives a power loss, not only a process crash."""

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ConfigurationError("timeout", f"must be positive, not {self.timeout}")
        if self.max_in_flight < 1:
            raise ConfigurationError("max_in_flight", "must be at least 1")
        if self.spool_max_bytes < 1024:
            raise ConfigurationError("spool_max_bytes", "must be at least 1024 bytes")
        if not self.source:
            raise ConfigurationError("source", "must not be empty")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> PublisherConfig:
        """Build a configuration from ``INTERLOCK_*`` variables; ``overrides`` win.

        Raises:
            ConfigurationError: a variable holds an invalid value; the error names it.
        """
        env = os.environ if environ is None else environ

        def path(name: str) -> Path | None:
            value = env.get(name)
            return Path(value) if value else None

        def number(name: str, kind: type[int] | type[float], default: float) -> float:
            raw = env.get(name)
            if not raw:
                return default
            try:
                return kind(raw)
            except ValueError as exc:
                raise ConfigurationError(name, f"{raw!r} is not a number") from exc

        servers = tuple(
            url.strip()
            for url in env.get("INTERLOCK_NATS_URL", DEFAULT_NATS_URL).split(",")
            if url.strip()
        )
        nats_fields: dict[str, object] = {
            "servers": servers,
            "user": env.get("INTERLOCK_NATS_USER") or None,
            "password": env.get("INTERLOCK_NATS_PASSWORD") or None,
            "token": env.get("INTERLOCK_NATS_TOKEN") or None,
            "credentials_file": path("INTERLOCK_NATS_CREDENTIALS"),
            "tls_ca_file": path("INTERLOCK_NATS_TLS_CA"),
            "tls_cert_file": path("INTERLOCK_NATS_TLS_CERT"),
            "tls_key_file": path("INTERLOCK_NATS_TLS_KEY"),
        }
        nats_overrides = overrides.pop("nats", None)
        options = nats_overrides if isinstance(nats_overrides, NatsOptions) else None
        fields: dict[str, object] = {
            "nats": options or NatsOptions(**nats_fields),  # type: ignore[arg-type]
            "source": env.get("INTERLOCK_SOURCE") or "sdk",
            "timeout": number("INTERLOCK_PUBLISH_TIMEOUT", float, 2.0),
            "spool_dir": path("INTERLOCK_SPOOL_DIR") or default_spool_dir(env),
            "spool_max_bytes": int(number("INTERLOCK_SPOOL_MAX_BYTES", int, 256 * 1024 * 1024)),
        }
        fields.update(overrides)
        return cls(**fields)  # type: ignore[arg-type]
