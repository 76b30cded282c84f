"""``make run``'s demo: an embedded nats-server, events published and tailed back."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
    assert re.fullmatch(r"loaded \d+ rules from .*config/rules", lines[0])
    assert lines[1].startswith("nats-server with JetStream at nats://127.0.0.1:")
    tailed = [line.split()[1] for line in lines if line.startswith("  ") and ":" in line[:12]]
    assert tailed == ["airflow.dag_run.succeeded", "s3.object.created", "db.table.updated"]
    fired = [line.split()[2] for line in lines if line.startswith("  >> rule")]
    # The Airflow bridge rule, then the compound "inputs landed" rule on the third event.
    assert fired == ["load-sales-starts-reports", "reports-when-inputs-landed"]
    assert (tmp_path / "nats").is_dir()
