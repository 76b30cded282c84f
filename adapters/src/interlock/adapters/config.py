"""Adapter configuration files (TOML) and finding adapter kinds by entry point.

::

    [nats]                         # optional; INTERLOCK_* variables fill what is missing
    url = "nats://nats-1:4222,nats://nats-2:4222"

    [adapters.landing-bucket]      # `interlock adapter run landing-bucket --config FILE`
    kind = "s3.poll"               # an entry point in the group `interlock.adapters`
    interval = "1m"
    checkpoint_dir = "/var/lib/interlock/checkpoints"   # optional, see below
    bucket = "landing"             # every other key is the adapter's own option
    prefix = "exports/"

Without ``checkpoint_dir``, checkpoints go to the ``checkpoints`` folder of the data
directory: the service's ``data_dir`` when the service polls the adapter, else
``$INTERLOCK_DATA_DIR`` or ``.interlock`` (``interlock adapter run``).

In the service, a section may name a connection the service keeps instead of giving its
credentials (``connection = "landing-s3"``): the service passes ``connection_options``,
which turns the name into the adapter's options (its endpoint, region and keys; a
database URL); the section's own options win. ``interlock adapter run`` keeps no
connections, so there such a section is refused, naming the option.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.9 and 3.10
    import tomli as tomllib

from interlock.adapters.base import AdapterConfigError, PollingAdapter
from interlock.sdk.compat import entry_points
from interlock.sdk.config import PublisherConfig
from interlock.sdk.durations import parse_duration
from interlock.sdk.errors import ConfigurationError
from interlock.sdk.local_server import data_dir_from

__all__ = ["AdapterSection", "adapter_kind", "adapter_kinds", "load_adapter_section"]

ENTRY_POINT_GROUP = "interlock.adapters"


class AdapterSection(msgspec.Struct, kw_only=True):
    """One ``[adapters.NAME]`` section, resolved."""

    name: str
    adapter: PollingAdapter
    interval: timedelta
    checkpoint_dir: Path
    publisher: PublisherConfig
    connection: str | None = None
    """The connection the section names (``connection = "landing-s3"``), if any."""
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    """The adapter's own options as written (without the connection's)."""


def adapter_kinds() -> dict[str, str]:
    """Every installed adapter kind: entry-point name → ``module:Class`` (nothing imported)."""
    return {entry.name: entry.value for entry in entry_points(ENTRY_POINT_GROUP)}


def adapter_kind(kind: str, adapter: str) -> type[PollingAdapter]:
    """Import only the adapter class of ``kind``.

    Raises:
        AdapterConfigError: no such kind is installed, or its extra is missing.
    """
    matches = [entry for entry in entry_points(ENTRY_POINT_GROUP) if entry.name == kind]
    if not matches:
        installed = ", ".join(sorted(adapter_kinds())) or "none"
        raise AdapterConfigError(
            adapter, "kind", f"{kind!r} is not an installed adapter (installed: {installed})"
        )
    try:
        loaded: type[PollingAdapter] = matches[0].load()
    except ImportError as exc:
        extra = kind.split(".", maxsplit=1)[0]
        raise AdapterConfigError(
            adapter,
            "kind",
            f"{kind!r} cannot be loaded ({exc}); install it with: "
            f"pip install 'interlock-adapters[{extra}]'",
        ) from exc
    return loaded


def load_adapter_section(
    path: Path,
    name: str,
    *,
    checkpoint_dir: Path | None = None,
    connection_options: Callable[[str, str], Mapping[str, Any]] | None = None,
) -> AdapterSection:
    """Read ``[adapters.<name>]`` (and ``[nats]``) from a TOML file.

    ``checkpoint_dir`` is where checkpoints go when the section does not say (default:
    ``checkpoints`` in ``$INTERLOCK_DATA_DIR`` or ``.interlock``).
    ``connection_options(connection, kind)``: the options a named connection gives an
    adapter of ``kind`` (the service's; raises ``LookupError`` or ``ValueError``).

    Raises:
        ConfigurationError: the file, the section or an option is missing or invalid.
    """
    try:
        document = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigurationError(str(path), f"cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(str(path), f"is not valid TOML: {exc}") from exc
    sections = document.get("adapters", {})
    if name not in sections:
        known = ", ".join(sorted(sections)) or "none"
        raise ConfigurationError(str(path), f"has no [adapters.{name}] (adapters: {known})")
    options = dict(sections[name])
    kind = options.pop("kind", None)
    if not isinstance(kind, str):
        raise AdapterConfigError(name, "kind", "is required (e.g. 's3.poll', 'db.freshness')")
    try:
        interval = parse_duration(options.pop("interval", "30s"))
    except ValueError as exc:
        raise AdapterConfigError(name, "interval", str(exc)) from exc
    default_dir = checkpoint_dir or data_dir_from(os.environ) / "checkpoints"
    checkpoints = Path(options.pop("checkpoint_dir", default_dir))
    connection = options.pop("connection", None)
    given = dict(options)
    if connection is not None:
        options = {**_connection_options(name, kind, connection, connection_options), **options}
    adapter = adapter_kind(kind, name).from_options(name, options)
    nats: dict[str, Any] = document.get("nats", {})
    environ = dict(os.environ)
    for key, variable in (
        ("url", "INTERLOCK_NATS_URL"),
        ("source", "INTERLOCK_SOURCE"),
        ("spool_dir", "INTERLOCK_SPOOL_DIR"),
    ):
        if key in nats:
            environ[variable] = str(nats[key])
    environ.setdefault("INTERLOCK_SOURCE", f"adapter.{kind}")
    return AdapterSection(
        name=name,
        adapter=adapter,
        interval=interval,
        checkpoint_dir=checkpoints,
        publisher=PublisherConfig.from_env(environ),
        connection=connection,
        options=given,
    )


def _connection_options(
    name: str,
    kind: str,
    connection: object,
    resolve: Callable[[str, str], Mapping[str, Any]] | None,
) -> Mapping[str, Any]:
    if not isinstance(connection, str) or not connection:
        raise AdapterConfigError(name, "connection", "must be a connection's name")
    if resolve is None:
        raise AdapterConfigError(
            name,
            "connection",
            f"names the connection {connection!r}, which only the service resolves: poll "
            "this adapter in the service (config/adapters.toml), or give its options here",
        )
    try:
        return resolve(connection, kind)
    except (LookupError, ValueError) as exc:
        raise AdapterConfigError(name, "connection", str(exc)) from None
