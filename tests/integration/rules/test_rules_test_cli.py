"""``interlock rules test`` through the real command line: exit 0 all pass, 1 a failure, 2 an error.

The example scenarios next to the rules in config/rules (a DST change and a holiday among
them) run here, so ``make test`` runs them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SALES = ROOT / "config" / "rules" / "sales.py"
SALES_SCENARIOS = ROOT / "config" / "rules" / "sales.test.toml"


def rules_test(*paths: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlock.sdk.cli", "rules", "test", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


@pytest.fixture
def sales_copy(tmp_path: Path) -> Path:
    """config/rules/sales.py and its scenarios, copied to be changed."""
    shutil.copy(SALES, tmp_path / "sales.py")
    shutil.copy(SALES_SCENARIOS, tmp_path / "sales.test.toml")
    return tmp_path


def test_the_example_scenarios_pass() -> None:
    result = rules_test("config/")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for name in (
        "  ok    DST: a job scheduled in UTC becomes late when Berlin moves to summer time",
        "  ok    holiday: nothing is due on Christmas Day, Monday's deadline still holds",
        "  ok    three landing files by 07:00 New York, across the DST change",
        "  ok    backlog: a miss judged 20 minutes behind is marked late",
    ):
        assert name in out
    for file in ("airflow", "landing", "pipelines", "sales"):
        assert f"config/rules/{file}.test.toml\n" in out
    assert out.rstrip().endswith(" passed, 0 failed")


def test_a_scenario_that_fails_exits_1_with_a_diff(sales_copy: Path) -> None:
    scenarios = sales_copy / "sales.test.toml"
    text = scenarios.read_text()
    # Expect Monday's deadline where it would be without the DST change (08:00 UTC).
    scenarios.write_text(text.replace('at = "2026-03-30T07:00Z"', 'at = "2026-03-30T08:00Z"'))
    result = rules_test(sales_copy)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    dst = "DST: a job scheduled in UTC becomes late when Berlin moves to summer time"
    assert f"  FAIL  {dst} (line 35)" in out
    assert (
        "          - fired     sales-table-by-0900  window 2026-03-30 00:00 CEST → 2026-03-30 "
        "09:00 CEST  at 2026-03-30 10:00 CEST  expected 1, arrived 0  (line 46)\n"
        "          + fired     sales-table-by-0900  window 2026-03-30 00:00 CEST → 2026-03-30 "
        "09:00 CEST  expected 1, arrived 0\n"
        "              differs from the expected one above in at: expected 2026-03-30 10:00 CEST, "
        "got 2026-03-30 09:00 CEST\n"
    ) in out
    assert out.rstrip().endswith("6 scenario(s) in 1 file(s): 5 passed, 1 failed")


def test_a_holiday_taken_out_of_the_rule_fails_its_scenario(sales_copy: Path) -> None:
    rules = sales_copy / "sales.py"
    rules.write_text(rules.read_text().replace('holidays=["2026-12-25"],', ""))
    result = rules_test(sales_copy / "sales.test.toml")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "  FAIL  holiday: nothing is due on Christmas Day" in result.stdout
    assert "+ fired     sales-table-by-0900  window 2026-12-25 00:00 CET" in result.stdout


def test_a_template_that_does_not_render_fails_the_scenario(sales_copy: Path) -> None:
    rules = sales_copy / "sales.py"
    text = rules.read_text()
    assert '"{{ window.deadline.date() }}"' in text
    rules.write_text(
        text.replace('"{{ window.deadline.date() }}"', '"{{ event.occurred.date() }}"')
    )
    result = rules_test(sales_copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "does not render (the service would fail it with render_error):\n"
        "          fired     sales-table-by-0900  window 2026-03-27 00:00 CET → 2026-03-27 "
        "09:00 CET  expected 1, arrived 0\n"
        "            action 1 (run_deployment) field 'parameters': 'None' has no attribute "
        "'occurred'"
    ) in result.stdout


def test_a_malformed_file_exits_2_naming_the_line_and_field(sales_copy: Path) -> None:
    scenarios = sales_copy / "sales.test.toml"
    text = scenarios.read_text()
    scenarios.write_text(text.replace('status = "resolved"', 'status = "resolvd"', 1))
    result = rules_test(scenarios)
    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        f"error: {scenarios}:31: scenario[1].expect[1].status: must be 'fired' or "
        "'resolved', not the string 'resolvd'\n"
    ) in result.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["nowhere/"], "error: nowhere: no such file or folder"),
        (["config/rules/sales.py"], "error: config/rules/sales.py:1: is not valid TOML"),
        ([], "the following arguments are required: PATH"),
    ],
)
def test_usage_errors_exit_2(arguments: list[str], message: str) -> None:
    result = rules_test(*arguments)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stdout + result.stderr


def test_rules_that_do_not_load_exit_2(sales_copy: Path) -> None:
    (sales_copy / "sales.py").write_text("from interlock.rules import nothing\n")
    result = rules_test(sales_copy)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "the rules it tests do not load:" in result.stdout
    assert "ImportError: cannot import name 'nothing'" in result.stdout
