"""Rule-change propagation between ``interlock server`` replicas (issue 19).

Two replicas (``replicas.enabled``) share a nats-server and a PostgreSQL cluster (both
started here, as the tests do); ``--rules`` rules are stored first, so every reconcile
compares that many. Then ``--changes`` times, through the **standby**'s API: update one
rule (a new version), or pause or resume it, in turn; and time from just before the
request until the **owner's engine** has it: the owner's log line ``rule NAME version V
(running|paused) loaded`` (written right after the engine took it; same machine, same
clock, millisecond stamps). Each change waits until the owner's API shows it
(``GET /api/rules/{name}``, polled every 5 ms) before the next; that time is reported
too, but a GET of the owner takes tens of milliseconds on a loaded machine, so it
measures the API more than the propagation. The change travels: the standby's store
commit, its announcement in the lease bucket (``rules.revision``), the owner's watch, its
reconcile (a query of every rule's version and paused flag, then the changed rule).
Figures: p50, p99 and max of each, and how much of it the standby took to answer.

    python tests/perf/bench_rule_propagation.py [--rules 1000] [--changes 200] [--out .bench]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from figures import write_figures

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the harness

from harness.nats import running_nats_server
from harness.postgres import PostgresCluster
from harness.replicas import ReplicaProcess
from interlock.rules import Rule, on
from interlock.rules.rule import dump_rules

_JSON = {"Content-Type": "application/json"}
_LOADED = re.compile(
    r"^(\S+) INFO interlock\.service\.pipeline\.rule_host: rule (\S+) version (\d+) "
    r"\((running|paused)\) loaded"
)


def _rule(n: int, text: str = "") -> Rule:
    return Rule(name=f"rule-{n:05d}", when=on(f"bench.e{n % 50}"), then=[], description=text)


def _owner_has(owner: ReplicaProcess, name: str, version: int, enabled: bool) -> bool:
    shown = httpx.get(f"{owner.url}/api/rules/{name}", timeout=5).json()
    status = shown.get("status", {})
    return bool(
        shown.get("version") == version and status.get("loaded") and status["enabled"] is enabled
    )


def run(scratch: Path, rules: int, changes: int) -> dict[str, Any]:
    """Two replicas, ``rules`` stored rules, ``changes`` timed changes; the figures."""
    key = Fernet.generate_key().decode()
    seconds: list[float] = []
    requests: list[float] = []
    started_at: dict[tuple[str, int, str], float] = {}
    with (
        PostgresCluster() as postgres,
        postgres.database() as database_url,
        running_nats_server(scratch / "nats") as nats,
    ):
        owner, standby = (
            ReplicaProcess(
                scratch / name, name, nats_url=nats.url, database_url=database_url, secret_key=key
            )
            for name in ("a", "b")
        )
        try:
            owner.start()
            owner.wait_role("owner", 60)
            standby.start()
            standby.wait_role("standby", 60)
            body = dump_rules([_rule(n) for n in range(rules)])
            httpx.post(f"{owner.url}/api/rules", content=body, headers=_JSON, timeout=120)
            versions = dict.fromkeys(range(rules), 1)
            paused = dict.fromkeys(range(rules), False)
            with httpx.Client(base_url=standby.url, timeout=10) as client:
                for index in range(changes):
                    n = (index * 7919) % rules
                    name = _rule(n).name
                    started = time.monotonic()
                    wall = time.time()
                    if index % 3 == 0:
                        verb = "resume" if paused[n] else "pause"
                        client.post(f"/api/rules/{name}/{verb}").raise_for_status()
                        paused[n] = not paused[n]
                    else:
                        new = dump_rules([_rule(n, f"change {index}")])
                        client.post("/api/rules", content=new, headers=_JSON).raise_for_status()
                        versions[n] += 1
                    requests.append(time.monotonic() - started)
                    state = "paused" if paused[n] else "running"
                    started_at[(name, versions[n], state)] = wall
                    while not _owner_has(owner, name, versions[n], not paused[n]):
                        if time.monotonic() - started > 30:
                            raise RuntimeError(f"change {index} of {name} did not reach the owner")
                        time.sleep(0.005)
                    seconds.append(time.monotonic() - started)
            engine = _engine_seconds(owner.output(), started_at)
            assert owner.role() == "owner"
            assert standby.role() == "standby"
        finally:
            standby.stop()
            owner.stop()
    return {
        "rules": rules,
        "changes": changes,
        "p50_ms": round(statistics.median(engine) * 1000, 1),
        "p99_ms": round(_p99(engine) * 1000, 1),
        "max_ms": round(max(engine) * 1000, 1),
        "api_p50_ms": round(statistics.median(seconds) * 1000, 1),
        "api_p99_ms": round(_p99(seconds) * 1000, 1),
        "request_p50_ms": round(statistics.median(requests) * 1000, 1),
        "request_p99_ms": round(_p99(requests) * 1000, 1),
    }


def _engine_seconds(log: str, started_at: dict[tuple[str, int, str], float]) -> list[float]:
    """Seconds from each change's request to the owner's log line saying its engine has it."""
    loaded: dict[tuple[str, int, str], float] = {}
    for line in log.splitlines():
        if found := _LOADED.match(line):
            key = (found.group(2), int(found.group(3)), found.group(4))
            loaded.setdefault(key, datetime.fromisoformat(found.group(1)).timestamp())
    missing = set(started_at) - set(loaded)
    if missing:
        raise RuntimeError(f"the owner's log does not show {len(missing)} changes: {missing}")
    return [loaded[key] - wall for key, wall in started_at.items()]


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main(rules: int, changes: int, out: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        result = run(Path(scratch), rules, changes)
    print(
        f"rule-change propagation (apply, pause or resume through the standby -> the owner's "
        f"engine has it, by its log), {changes} changes among {rules} rules: p50 "
        f"{result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} "
        f"ms; of which the standby's answer to the request: p50 "
        f"{result['request_p50_ms']:.1f} ms, p99 {result['request_p99_ms']:.1f} ms; until the "
        f"owner's API shows it: p50 {result['api_p50_ms']:.1f} ms, p99 "
        f"{result['api_p99_ms']:.1f} ms"
    )
    figures = {"benchmark": "rule_propagation", **result}
    write_figures(out / "rule_propagation.json", figures)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    arguments = parser.parse_args()
    main(arguments.rules, arguments.changes, arguments.out)
