"""``--config FILE`` as every command that reads the service's settings takes it.

Without the flag, ``config/interlock.toml`` is read if it exists; a file named on the
command line must exist, and a missing, unreadable or invalid one is a one-line error
naming it (see :func:`~interlock.service.settings.load_settings`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from interlock.service.settings import DEFAULT_CONFIG_FILE, Settings, load_settings

__all__ = ["add_config_argument", "settings_from"]


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--config FILE``."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"TOML settings file (default: {DEFAULT_CONFIG_FILE} if it exists)",
    )


def settings_from(args: argparse.Namespace, **values: Any) -> Settings:
    """The settings from ``--config`` (required when given), the environment and ``values``."""
    given: Path | None = args.config
    return load_settings(given or DEFAULT_CONFIG_FILE, config_required=given is not None, **values)
