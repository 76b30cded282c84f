"""Writing a benchmark's figures: JSON under ``--out``, stamped with where and when.

Every ``bench_*.py`` script ends with :func:`write_figures`; ``make bench`` leaves the
files in ``.bench/``. (A script's own directory is first on ``sys.path``, so the scripts
import this module as ``figures``.)
"""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["write_figures"]


def write_figures(path: Path, figures: dict[str, Any]) -> Path:
    """Write ``figures`` as JSON to ``path``, with the machine, Python, time and load.

    A blocking write, made after the measurement. Returns ``path``.
    """
    stamped = {
        **figures,
        "machine": platform.platform(),
        "python": platform.python_version(),
        "measured_at": datetime.now(UTC).isoformat(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stamped, indent=2) + "\n")
    return path
