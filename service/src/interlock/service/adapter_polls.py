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
  ``<data_dir>/spool/adapters``; checkpoints stay where the section says;
- an adapter whose section is invalid is reported and skipped; the others and the
  service run on. A poll that fails (the source is down, refuses us) is logged and
  retried at the next interval.
"""

from __future__ import annotations

import logging
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from interlock.adapters.base import SourceError
from interlock.adapters.checkpoints import FileCheckpointStore
from interlock.adapters.config import AdapterSection, load_adapter_section
from interlock.adapters.runner import AdapterRunner
from interlock.sdk import NatsOptions
from interlock.sdk.errors import ConfigurationError, InterlockError
from interlock.sdk.sync import SyncPublisher

__all__ = ["AdapterPoll", "load_adapter_polls"]

logger = logging.getLogger(__name__)


@dataclass
class AdapterPoll:
    """One adapter the service polls, with its runner."""

    section: AdapterSection
    runner: AdapterRunner
    publisher: SyncPublisher
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        """The adapter's name (its ``[adapters.NAME]``)."""
        return self.section.name

    def poll(self) -> None:
        """Poll until the source has nothing more; failures are logged, not raised."""
        if not self.lock.acquire(blocking=False):
            return  # the previous poll still runs
        try:
            self.runner.drain()  # counts a failure in runner.stats
        except SourceError as exc:
            logger.warning("adapter %s: %s; next try at the next interval", self.name, exc)
        except Exception:
            logger.exception(
                "adapter %s: the poll failed; next try at the next interval", self.name
            )
        finally:
            self.lock.release()

    def close(self) -> None:
        """Flush and close the adapter's publisher."""
        self.publisher.close()


def load_adapter_polls(path: Path, nats: NatsOptions, spool_dir: Path) -> list[AdapterPoll]:
    """Every valid ``[adapters.NAME]`` of ``path`` (a missing file: none), ready to poll."""
    if not path.exists():
        return []
    try:
        names = list(tomllib.loads(path.read_text()).get("adapters", {}))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        logger.error("adapters: %s cannot be read (%s); no adapter is polled", path, exc)
        return []
    polls = []
    for name in names:
        try:
            section = load_adapter_section(path, name)
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
            FileCheckpointStore(section.checkpoint_dir),
            interval=section.interval,
        )
        polls.append(AdapterPoll(section=section, runner=runner, publisher=publisher))
    if polls:
        logger.info("adapters polled by the service: %s", ", ".join(p.name for p in polls))
    return polls
