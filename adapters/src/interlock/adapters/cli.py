"""``interlock adapter``: run a polling adapter standalone."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from interlock.adapters.checkpoints import FileCheckpointStore
from interlock.adapters.config import adapter_kinds, load_adapter_section
from interlock.adapters.runner import AdapterRunner
from interlock.sdk.sync import SyncPublisher

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(groups: Any) -> None:
    """Add the ``adapter`` command group."""
    adapter = groups.add_parser("adapter", help="run polling adapters")
    commands = adapter.add_subparsers(title="commands", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run",
        help="poll a source and publish its events until interrupted",
        description="Run the adapter NAME from the [adapters.NAME] section of a TOML file.",
    )
    run.add_argument("name", metavar="NAME")
    run.add_argument("--config", type=Path, required=True, metavar="FILE")
    run.add_argument("--once", action="store_true", help="poll once (until caught up) and exit")
    run.set_defaults(handler=_run)
    kinds = commands.add_parser("kinds", help="list the installed adapter kinds")
    kinds.set_defaults(handler=_kinds)


def _run(args: argparse.Namespace) -> int:
    section = load_adapter_section(args.config, args.name)
    store = FileCheckpointStore(section.checkpoint_dir)
    with SyncPublisher(section.publisher) as publisher:
        runner = AdapterRunner(section.adapter, publisher, store, interval=section.interval)
        try:
            if args.once:
                runner.drain()
            else:
                stop = threading.Event()
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                try:
                    runner.run_forever(stop)
                except KeyboardInterrupt:
                    stop.set()
        finally:
            section.adapter.close()
    stats = runner.stats
    print(
        f"{section.name}: {stats.polls} poll(s), {stats.events} event(s), {stats.spooled} spooled"
    )
    return 0


def _kinds(args: argparse.Namespace) -> int:
    for name, target in sorted(adapter_kinds().items()):
        print(f"{name}\t{target}")
    return 0
