"""``make run``'s demo: an embedded nats-server, events published and tailed back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_publishes_and_tails_its_events(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "interlock.service.demo",
            "--once",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("nats-server with JetStream at nats://127.0.0.1:")
    tailed = [line.split()[1] for line in lines if line.startswith("  ") and ":" in line[:12]]
    assert tailed == ["airflow.dag_run.succeeded", "s3.object.created", "db.table.updated"]
    assert (tmp_path / "nats").is_dir()
