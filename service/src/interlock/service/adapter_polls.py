"""Adapters polled by the service's scheduler: the ``[adapters.NAME]`` sections of a file.

The file (``settings.adapters_file``, default ``config/adapters.toml``) has the format
``interlock adapter run NAME --config FILE`` reads (see :mod:`interlock.adapters.config`),
so an adapter moves between standalone and in-service without a change. In the service:

- each adapter becomes an APScheduler interval job ``adapter:NAME`` (every ``interval``)
  in the persistent job store, polled in the scheduler's threads (adapters are
  synchronous), one poll at a time per adapter, repeated at once while the source says
  it has more;
- events go out through a :class:`~interlock.sdk.SyncPublisher` on the service's own
  NATS servers (the file's ``[nats]`` table is for standalone runs), with its spool under
  ``<data_dir>/spool/adapters``; checkpoints go where the section says, by default to
  ``<data_dir>/checkpoints``;
- an adapter whose section is invalid is reported and skipped; the others and the
  service run on. A poll that fails (the source is down, refuses us) is logged and
  retried at the next interval;
- at start, one INFO line per adapter says what is polled, how often, where its
  checkpoints are; every poll is reported to the :class:`~.adapter_status.AdapterBoard`
  (``GET /api/adapters``, ``interlock adapters list``, ``interlock_adapter_*`` metrics).
"""

from __future__ import annotations

import logging
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from interlock.adapters.base import SourceError
from interlock.adapters.checkpoints import CheckpointStore, FileCheckpointStore
from interlock.adapters.config import AdapterSection, adapter_kind, load_adapter_section
from interlock.adapters.runner import AdapterRunner
from interlock.sdk import NatsOptions
from interlock.sdk.durations import format_duration
from interlock.sdk.errors import ConfigurationError, InterlockError
from interlock.sdk.sync import SyncPublisher
from interlock.service.adapter_connections import AdapterConnections, adapter_options
from interlock.service.adapter_status import AdapterBoard

__all__ = ["AdapterPoll", "load_adapter_polls"]

logger = logging.getLogger(__name__)


@dataclass
class AdapterPoll:
    """One adapter the service polls, with its runner."""

    section: AdapterSection
    runner: AdapterRunner
    publisher: SyncPublisher
    board: AdapterBoard = field(default_factory=AdapterBoard)
    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: AdapterConnections | None = None
    """Resolves the connection the section names, before each poll."""
    version: int | None = None
    """The version of that connection the adapter was built with."""

    @property
    def name(self) -> str:
        """The adapter's name (its ``[adapters.NAME]``)."""
        return self.section.name

    def poll(self) -> None:
        """Poll until the source has nothing more; failures are logged, not raised."""
        if not self.lock.acquire(blocking=False):
            return  # the previous poll still runs
        stats = self.runner.stats
        before = (stats.events, stats.spooled)
        self.board.started(self.name, _now())
        try:
            self._follow_connection()
            polls = self.runner.drain()  # counts a failure in runner.stats
        except SourceError as exc:
            self.board.failed(self.name, _now(), str(exc))
            logger.warning("adapter %s: %s; next try at the next interval", self.name, exc)
        except Exception as exc:
            self.board.failed(self.name, _now(), f"{type(exc).__name__}: {exc}")
            logger.exception(
                "adapter %s: the poll failed; next try at the next interval", self.name
            )
        else:
            events, spooled = stats.events - before[0], stats.spooled - before[1]
            self.board.succeeded(self.name, _now(), polls=polls, events=events, spooled=spooled)
        finally:
            self.lock.release()

    def _follow_connection(self) -> None:
        """Rebuild the adapter if its connection changed since it was built.

        Raises:
            SourceError: the connection cannot be resolved, or gives unusable options
                (this poll fails, the next one tries again).
        """
        name = self.section.connection
        if name is None or self.connections is None:
            return
        kind = self.section.adapter.kind
        try:
            resolved = self.connections.resolve(name)
            if resolved.version == self.version:
                return
            options = {**adapter_options(kind, resolved), **self.section.options}
            adapter = adapter_kind(kind, self.name).from_options(self.name, options)
        except (LookupError, ValueError, TimeoutError, InterlockError) as exc:
            reason = str(exc) or f"connection {name!r}: no answer from the store in time"
            raise SourceError(self.name, reason) from None
        previous, self.runner.adapter = self.runner.adapter, adapter
        self.version = resolved.version
        previous.close()
        logger.info("adapter %s: connection %s changed (version %d)", self.name, name, self.version)

    def close(self) -> None:
        """Flush and close the adapter's publisher."""
        self.publisher.close()


def _now() -> datetime:
    return datetime.now(UTC)


def load_adapter_polls(
    path: Path,
    nats: NatsOptions,
    spool_dir: Path,
    *,
    checkpoint_dir: Path | None = None,
    board: AdapterBoard | None = None,
    connections: AdapterConnections | None = None,
    checkpoints: Callable[[AdapterSection], CheckpointStore] | None = None,
) -> list[AdapterPoll]:
    """Every valid ``[adapters.NAME]`` of ``path`` (a missing file: none), ready to poll.

    ``connections`` resolves the connections sections name (``connection = "NAME"``:
    :mod:`~interlock.service.adapter_connections`); without it such sections are skipped.

    ``checkpoint_dir`` is where checkpoints go when a section does not say; each adapter
    is registered on ``board``. ``checkpoints`` gives each adapter another checkpoint
    store than its directory's files (replicas keep them in the database).
    """
    board = board if board is not None else AdapterBoard()
    if not path.exists():
        logger.info("adapters: no %s, so the service polls none", path)
        return []
    try:
        names = list(tomllib.loads(path.read_text()).get("adapters", {}))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        logger.error("adapters: %s cannot be read (%s); no adapter is polled", path, exc)
        return []
    polls = []
    for name in names:
        versions: dict[str, int] = {}
        try:
            section = load_adapter_section(
                path,
                name,
                checkpoint_dir=checkpoint_dir,
                connection_options=_options_from(connections, versions),
            )
        except (ConfigurationError, InterlockError) as exc:
            logger.error("adapters: %s: %s; this adapter is skipped", path, exc)
            continue
        config = msgspec.structs.replace(
            section.publisher,
            nats=msgspec.structs.replace(nats, name=f"interlock-adapter-{name}"),
            spool_dir=spool_dir / name,
        )
        publisher = SyncPublisher(config)
        runner = AdapterRunner(
            section.adapter,
            publisher,
            checkpoints(section) if checkpoints else FileCheckpointStore(section.checkpoint_dir),
            interval=section.interval,
        )
        kind = section.adapter.kind
        board.register(name, kind, section.interval)
        polls.append(
            AdapterPoll(
                section=section,
                runner=runner,
                publisher=publisher,
                board=board,
                connections=connections,
                version=versions.get(section.connection or ""),
            )
        )
        logger.info(
            "adapter %s (%s) polled every %s; checkpoints in %s",
            name,
            kind,
            format_duration(section.interval),
            "the database" if checkpoints else section.checkpoint_dir,
        )
    if not polls:
        logger.info("adapters: %s names none the service can poll", path)
    return polls


def _options_from(
    connections: AdapterConnections | None, versions: dict[str, int]
) -> Callable[[str, str], dict[str, Any]] | None:
    """What turns a section's connection into its options, noting the version used."""
    if connections is None:
        return None

    def options(name: str, kind: str) -> dict[str, Any]:
        resolved = connections.resolve(name)
        versions[name] = resolved.version
        return adapter_options(kind, resolved)

    return options
