"""``interlock rules backtest`` against a real service that ran the same rules (issue 18).

The server of :mod:`harness.backtest_recording` ran a mix of rules (event, payload threshold, count
threshold, heartbeat and ``after`` absences, a sequence, a compound) over a scripted
scenario; each test backtests over the same span through the command line, as a user
would, and reads its ``--json`` or its exit status.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from typing import Any

import pytest

from harness.backtest_recording import Recorded
from interlock.rules.engine.firing import firing_id

pytestmark = pytest.mark.slow


def _report(recorded: Recorded, *args: str) -> dict[str, Any]:
    done = recorded.backtest(*args, "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _rules(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["rule"]: rule for rule in report["rules"]}


def test_the_same_rules_fire_the_same_ids_as_live(recorded: Recorded) -> None:
    report = _report(recorded, str(recorded.rules_file), *recorded.span)

    rules = _rules(report)
    assert report["changed"] is False
    assert report["warmup_firings"] >= 1  # the warm-up's job.failed, dropped
    assert report["render_problems"] == []
    for name, rule in rules.items():
        live = rule["live"]
        assert live is not None, name
        assert (live["newly"], live["no_longer"]) == ([], []), name
        assert live["same"] == rule["fired"] + rule["resolved"], name
    # Every kind of rule fired after the warm-up, so each agreement means something.
    fired = {name: rule["fired"] for name, rule in rules.items()}
    assert fired == {
        "job-failed": 2,
        "big-loads": 2,
        "files-landed": 1,
        "table-silent": 1,
        "job-unfinished": 2,
        "a-then-b": 1,
        "x-and-y": 1,
    }
    assert rules["table-silent"]["resolved"] == 1
    assert rules["job-unfinished"]["resolved"] == 1


def test_a_lower_threshold_would_newly_fire_exactly_the_predicted_firings(
    recorded: Recorded,
) -> None:
    changed = recorded.rules_file.with_name("changed.py")
    text = recorded.rules_file.read_text()
    changed.write_text(text.replace("payload.rows >= 100", "payload.rows >= 50"))
    predicted = {
        str(firing_id("big-loads", event.resource["id"], "fired", event.id))
        for event in recorded.events
        if event.event == "job.done" and 50 <= event.payload["rows"] < 100
    }
    assert len(predicted) == 2

    report = _report(recorded, str(changed), *recorded.span)

    rules = _rules(report)
    big = rules["big-loads"]["live"]
    assert {firing["id"] for firing in big["newly"]} == predicted
    assert big["no_longer"] == []
    assert big["same"] == 2
    assert any("whose trigger differs" in line for line in big["explanations"])
    assert report["changed"] is True
    others = [rule["live"] for name, rule in rules.items() if name != "big-loads"]
    assert all(not (live["newly"] or live["no_longer"]) for live in others)


def test_template_errors_show_without_running_anything(recorded: Recorded) -> None:
    broken = recorded.rules_file.with_name("broken_template.py")
    text = recorded.rules_file.read_text()
    broken.write_text(text.replace('{"key": "{{ key }}"}', '{"key": "{{ (key | length) // 0 }}"}'))

    report = _report(recorded, str(broken), *recorded.span)

    firings = sum(rule["fired"] + rule["resolved"] for rule in report["rules"])
    assert len(report["render_problems"]) == firings
    assert all("ZeroDivisionError" in p["error"] for p in report["render_problems"])
    assert report["changed"] is False  # actions changed, not what fires


def test_exit_codes(recorded: Recorded) -> None:
    same = recorded.backtest(str(recorded.rules_file), *recorded.span, "--detailed-exitcode")
    assert same.returncode == 0, same.stderr
    assert "no difference from the live firings" in same.stdout

    changed = recorded.rules_file.with_name("changed_exit.py")
    changed.write_text(recorded.rules_file.read_text().replace(">= 100", ">= 50"))
    differs = recorded.backtest(str(changed), *recorded.span, "--detailed-exitcode")
    assert differs.returncode == 2, differs.stderr
    assert "would newly fire" in differs.stdout
    plain = recorded.backtest(str(changed), *recorded.span)
    assert plain.returncode == 0, plain.stderr

    for args, says in [
        ([str(recorded.rules_file), "--since", "yesterday-ish"], "--since 'yesterday-ish'"),
        ([str(recorded.rules_file.with_name("nope.py")), "--since", "1h"], "no such file"),
        (
            [str(recorded.rules_file), "--since", "1h", "--nats-url", "nats://127.0.0.1:9"],
            "NATS",
        ),
        (
            [str(recorded.rules_file), "--since", "1h", "--api-url", "http://127.0.0.1:9"],
            "cannot reach the Interlock API",
        ),
    ]:
        failed = recorded.backtest(*args, "--detailed-exitcode")
        assert failed.returncode == 1, (args, failed.stdout, failed.stderr)
        (line,) = failed.stderr.strip().splitlines()  # one line, nothing else
        assert line.startswith("interlock: error:"), failed.stderr
        assert says in line, failed.stderr


def test_warns_of_interlock_events_and_works_without_the_api(recorded: Recorded) -> None:
    internal = recorded.rules_file.with_name("internal.py")
    internal.write_text(
        "from interlock.rules import Rule, on\n"
        'fired = Rule(name="on-fired", when=on("interlock.rule.fired"), allow_loop=True)\n'
    )

    report = _report(recorded, str(internal), *recorded.span, "--no-compare")

    assert report["compared"] is False
    assert report["rules"][0]["live"] is None
    assert report["rules"][0]["fired"] > 0  # the live rules' own output, replayed
    assert any("Interlock's own events" in warning for warning in report["warnings"])


def test_warns_when_the_horizon_exceeds_the_streams_retention(recorded: Recorded) -> None:
    report = _report(recorded, str(recorded.rules_file), "--since", "8d", "--no-compare")

    (warning,) = [w for w in report["warnings"] if "retention" in w]
    assert "exceeds the stream's retention (7d)" in warning


def test_progress_is_drawn_on_a_terminal(recorded: Recorded) -> None:
    controller, terminal = pty.openpty()
    try:
        variables = {
            **{k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")},
            "INTERLOCK_DATA_DIR": str(recorded.server.workdir / "data"),
        }
        command = [sys.executable, "-m", "interlock.sdk.cli", "rules", "backtest"]
        done = subprocess.run(
            [*command, str(recorded.rules_file), *recorded.span, "--no-compare"],
            env=variables,
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=90,
            check=False,
        )
        os.close(terminal)
        drawn = b""
        while select.select([controller], [], [], 0.5)[0]:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal's other end is closed: all was read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)

    assert done.returncode == 0
    text = drawn.decode()
    assert "event time 20" in text
    assert f"{len(recorded.events)} events" in text
    assert text.endswith("\r")  # the line is cleared at the end
    assert b"event time" not in done.stdout
