"""A million open windows: loading them, what each costs in memory, judging them all at once.

100 heartbeat rules x 10,000 declared keys (issue 15): every key's window is open from
the load time. The figures, each measured in a child process of its own (memory is read
from /proc):

- **load**: building the engine with the rules (every window opens);
- **bytes per open window**: the RSS the loaded engine adds, divided by the windows;
- **judge**: one ``advance`` past every deadline — every window misses — in windows per
  second (the target: at least 500,000);
- **export / import**: the checkpoint's size and the time to write it and read it back.

    python tests/perf/bench_windows.py [--rules 100] [--keys 10000] [--out .bench]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the harness

from figures import write_figures

from interlock.rules import Rule, absent, heartbeat
from interlock.rules.engine.engine import Engine

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
TARGET_WINDOWS_PER_S = 500_000
TARGET_BYTES_PER_WINDOW = 400


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def rules(count: int, keys: int) -> list[Rule]:
    declared = [f"key-{n}" for n in range(keys)]
    return [
        Rule(
            name=f"beat-{j}",
            when=absent(f"svc{j}.beat", by=heartbeat("1h"), for_each="resource.id", keys=declared),
        )
        for j in range(count)
    ]


def child(count: int, keys: int) -> dict[str, Any]:
    """Runs in a fresh process: the figures of one engine."""
    built = rules(count, keys)
    gc.collect()
    before = rss_bytes()
    start = time.perf_counter()
    engine = Engine(built, now=T0)
    load_s = time.perf_counter() - start
    gc.collect()
    windows = count * keys
    per_window = (rss_bytes() - before) / windows
    start = time.perf_counter()
    state = engine.export_state()
    export_s = time.perf_counter() - start
    start = time.perf_counter()
    restored = Engine(built, now=T0)
    restored.import_state(state)
    import_s = time.perf_counter() - start
    del restored
    gc.collect()
    start = time.perf_counter()
    fired = engine.advance(T0 + timedelta(hours=2))
    judge_s = time.perf_counter() - start
    assert len(fired) == windows, f"{len(fired)} of {windows} windows missed"
    return {
        "rules": count,
        "keys": keys,
        "windows": windows,
        "load_s": round(load_s, 2),
        "bytes_per_window": round(per_window),
        "judge_s": round(judge_s, 2),
        "windows_per_s": round(windows / judge_s),
        "export_s": round(export_s, 2),
        "export_mb": round(len(state) / 1e6, 1),
        "import_s": round(import_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.rules, args.keys)))
        return
    command = [sys.executable, __file__, "--child", "--rules", str(args.rules)]
    command += ["--keys", str(args.keys)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["benchmark"] = "windows"
    figures["targets"] = {
        f"judging >= {TARGET_WINDOWS_PER_S:,} windows/s": figures["windows_per_s"]
        >= TARGET_WINDOWS_PER_S,
        f"< {TARGET_BYTES_PER_WINDOW} bytes per open window": figures["bytes_per_window"]
        < TARGET_BYTES_PER_WINDOW,
    }
    print(
        f"{figures['windows']:,} open windows ({figures['rules']} heartbeat rules x "
        f"{figures['keys']:,} declared keys): load {figures['load_s']} s, "
        f"{figures['bytes_per_window']} bytes per window (target < {TARGET_BYTES_PER_WINDOW}), "
        f"judging all at once {figures['judge_s']} s = {figures['windows_per_s']:,} windows/s "
        f"(target >= {TARGET_WINDOWS_PER_S:,}), export {figures['export_s']} s "
        f"({figures['export_mb']} MB), import {figures['import_s']} s"
    )
    write_figures(args.out / "windows.json", figures)


if __name__ == "__main__":
    main()
