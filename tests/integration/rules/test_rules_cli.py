"""``interlock rules check``: the example rules pass; mistakes are reported where written."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def check(*paths: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlock.sdk.cli", "rules", "check", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_example_rules_pass_and_print_a_plan() -> None:
    result = check(ROOT / "config" / "rules")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "rule sales-table-by-0900" in out
    assert (
        "when: missing: db.table.updated where resource.id == 'warehouse.sales' by 09:00 "
        "Europe/Berlin on Mon–Fri" in out  # noqa: RUF001 - the plan prints an en dash
    )
    assert "next deadlines: " in out
    assert " CET" in out
    assert "then: notify channel data-team-slack: 'Sales table not refreshed by 09:00'" in out
    assert "run deployment backfill-sales" in out
    for kind in (
        "at least 3 x",
        "within 2h after job.started",
        "at least once every 10m",
        "all of [",
        "at least 2 of [",
        "in order: ",
        "(keys: warehouse.sales",
    ):
        assert kind in out, kind
    for action in (
        "notify",
        "run deployment",
        "pause queue",
        "resume queue",
        "pause rule",
        "resume rule",
        "webhook POST",
        "emit reports.inputs.ready",
    ):
        assert action in out, action
    assert out.rstrip().endswith("rule(s) checked: ok")


def test_problems_name_file_line_rule_and_field(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(
        textwrap.dedent("""
        from interlock.rules import Rule, on
        fine = Rule(name="fine", when=on("a.b"))
    """)
    )
    (tmp_path / "bad.py").write_text(
        textwrap.dedent("""
        from interlock.rules import Rule, on, notify

        broken = Rule(
            name="sales-sla",
            when=on("a.b", at_least=3, within="2x"),
            then=[notify("team", title="{{ oops")],
        )
    """)
    )
    (tmp_path / "crash.py").write_text("import interlock.rules\nraise RuntimeError('boom')\n")
    (tmp_path / "dup.py").write_text(
        "from interlock.rules import Rule, on\nagain = Rule(name='fine', when=on('c.d'))\n"
    )
    result = check(tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(
        "bad.py:4: rule 'sales-sla': when.within: '2x' is not a duration (use e.g. '90s'" in line
        for line in lines
    ), result.stdout
    assert any(
        "bad.py:4: rule 'sales-sla': then[0].title: template syntax error" in line for line in lines
    )
    assert any("crash.py:2: RuntimeError: boom" in line for line in lines)
    assert any("rule 'fine': name: is used by another rule too" in line for line in lines)
    assert lines[-1] == "2 rule(s) checked: 4 problem(s)"


def test_output_cut_short_by_its_reader_ends_quietly(tmp_path: Path) -> None:
    many = tmp_path / "many.py"
    many.write_text(
        "from interlock.rules import Rule, notify, on\n"
        "rules = [Rule(name=f'rule-{i}', when=on(f'job.{i}.done'), then=[notify('ops')])\n"
        "         for i in range(2000)]\n"
    )
    # As `interlock rules check ... | head -1`: the reader leaves after one line, with far
    # more than a pipe holds still to come.
    process = subprocess.Popen(
        [sys.executable, "-m", "interlock.sdk.cli", "rules", "check", str(many)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    assert process.stdout.readline().startswith(b"rule rule-")
    process.stdout.close()
    errors = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == 141  # 128 + SIGPIPE, as a shell's own tools end
    assert errors == ""


def test_the_sales_example_is_updated_daily_by_0900() -> None:
    from interlock.rules.loader import load_paths  # noqa: PLC0415
    from interlock.rules.windows import schedule_for  # noqa: PLC0415

    loaded = load_paths([ROOT / "config" / "rules" / "sales.py"])
    [sales] = [rule for rule in loaded.rules if rule.name == "sales-table-by-0900"]
    window = sales.when.window  # type: ignore[union-attr]
    assert window.start == "start_of_day"  # an update counts for the day it happens
    schedule = schedule_for(window)
    monday_0900 = datetime(2026, 12, 7, 8, tzinfo=UTC)  # 09:00 in Berlin
    assert schedule.window_for(monday_0900, window.start).start == datetime(
        2026, 12, 6, 23, tzinfo=UTC
    )  # Monday 00:00 in Berlin, not Friday 09:00
    assert 'start="start_of_day"' in (ROOT / "README.md").read_text()
