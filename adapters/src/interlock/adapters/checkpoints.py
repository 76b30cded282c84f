"""Where polling adapters' checkpoints (watermarks) are kept: the :class:`CheckpointStore`.

A checkpoint is a JSON object an adapter returns from a poll and gets back at the next
one (:meth:`~interlock.adapters.base.PollingAdapter.poll`); the runner saves it once the
poll's events are published. A store keeps the last one per adapter name.
:class:`FileCheckpointStore` keeps one JSON file per adapter, written atomically
(temporary file, fsync, rename), so a crash leaves either the old or the new one, never a
torn file; another store (the service's database, so that cursors follow an adapter
between replicas) only has to keep the same two promises.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Protocol

from interlock.sdk.errors import ConfigurationError

__all__ = ["CheckpointStore", "FileCheckpointStore"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class CheckpointStore(Protocol):
    """The last checkpoint of each adapter, by adapter name."""

    def load(self, name: str) -> dict[str, Any] | None:
        """The saved checkpoint of adapter ``name``, or ``None`` before its first poll.

        Raises:
            ConfigurationError: it is there but cannot be read (the message says how to
                start over).
        """
        ...

    def save(self, name: str, checkpoint: dict[str, Any]) -> None:
        """Replace the checkpoint of adapter ``name``: after a crash, the old or the new."""
        ...


class FileCheckpointStore:
    """Checkpoints as ``<directory>/<adapter name>.json`` (a :class:`CheckpointStore`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError("checkpoint_dir", f"cannot create {directory}: {exc}") from exc

    def _path(self, name: str) -> Path:
        return self.directory / f"{_SAFE.sub('_', name)}.json"

    def load(self, name: str) -> dict[str, Any] | None:
        """The saved checkpoint of adapter ``name``, or ``None`` before its first poll."""
        path = self._path(name)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                "checkpoint", f"{path} is unreadable ({exc}); fix or remove it to start over"
            ) from exc
        if not isinstance(data, dict):
            raise ConfigurationError("checkpoint", f"{path} does not hold a JSON object")
        return data

    def save(self, name: str, checkpoint: dict[str, Any]) -> None:
        """Replace the checkpoint of adapter ``name``, atomically."""
        path = self._path(name)
        temporary = path.with_suffix(".json.tmp")
        with temporary.open("w") as handle:
            json.dump(checkpoint, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
