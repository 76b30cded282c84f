"""The Interlock server running on this machine, as its data directory describes it.

``interlock server`` writes ``<data_dir>/server.json`` once it serves: its process id, its
API URL and, in embedded mode, the URL of the nats-server it started. Command lines on the
same machine read it to find the server without being told its ports: ``interlock
events`` without ``--nats-url``, the API commands without ``--api-url``, ``interlock
worker`` beside an embedded server. The file stays after the server stops (the next
start keeps its NATS port from it); :meth:`LocalServer.running` says whether the process
still runs.

Only command lines read it, never the library: a producer's configuration comes from what
it is given (:class:`~interlock.sdk.PublisherConfig`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

__all__ = [
    "DATA_DIR_VARIABLE",
    "DEFAULT_DATA_DIR",
    "SERVER_FILE",
    "LocalServer",
    "data_dir_from",
    "find_local_server",
    "read_local_server",
    "write_local_server",
]

DEFAULT_DATA_DIR = Path(".interlock")
"""The service's default data directory, relative to where it was started."""
DATA_DIR_VARIABLE = "INTERLOCK_DATA_DIR"
"""The variable naming another data directory (the service's ``data_dir`` setting)."""
SERVER_FILE = "server.json"


class LocalServer(msgspec.Struct, frozen=True, kw_only=True):
    """What a server wrote about itself into its data directory."""

    pid: int
    """Its process id."""
    api_url: str = ""
    """Its HTTP API, e.g. ``http://127.0.0.1:8400`` (empty when it serves none)."""
    nats_url: str = ""
    """The embedded nats-server's URL (empty when the server uses an external NATS)."""

    @property
    def running(self) -> bool:
        """Whether the process still runs (a reused pid can fool this, rarely)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process: alive
            return True
        return True


def data_dir_from(environ: Mapping[str, str]) -> Path:
    """The data directory ``environ`` names (``INTERLOCK_DATA_DIR``), else ``.interlock``."""
    return Path(environ.get(DATA_DIR_VARIABLE) or DEFAULT_DATA_DIR)


def read_local_server(data_dir: Path) -> LocalServer | None:
    """What the last server on ``data_dir`` wrote, running or not; ``None`` if nothing."""
    try:
        return msgspec.json.decode((data_dir / SERVER_FILE).read_bytes(), type=LocalServer)
    except (OSError, msgspec.DecodeError):
        return None


def find_local_server(environ: Mapping[str, str]) -> LocalServer | None:
    """The server running on the data directory ``environ`` names, if one runs."""
    found = read_local_server(data_dir_from(environ))
    return found if found is not None and found.running else None


def write_local_server(data_dir: Path, server: LocalServer) -> None:
    """Replace ``<data_dir>/server.json`` atomically (a reader never sees half of it)."""
    path = data_dir / SERVER_FILE
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        draft.write_bytes(msgspec.json.encode(server) + b"\n")
        draft.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            draft.unlink()
