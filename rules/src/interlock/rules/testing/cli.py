"""``interlock rules test PATH...``: run scenario files and print what differs.

Exit status 0 when every scenario passes, 1 when one fails (its diff is printed), 2 when
something cannot be run: no scenario file found, a file that does not parse or has a
wrong field (named with its line), rules that do not load.
"""

from __future__ import annotations

from pathlib import Path

from interlock.rules.testing.runner import Report, run_paths

__all__ = ["EXIT_ERROR", "EXIT_FAILED", "EXIT_PASSED", "run_test_command"]

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_ERROR = 2


def run_test_command(paths: list[Path], *, quiet: bool = False) -> int:
    """Run the scenario files under ``paths``, print the outcome; return the exit status."""
    report = run_paths(paths)
    _print(report, quiet=quiet)
    if report.errors:
        return EXIT_ERROR
    return EXIT_FAILED if report.failed else EXIT_PASSED


def _print(report: Report, *, quiet: bool) -> None:
    current: Path | None = None
    for outcome in report.outcomes:
        if quiet and outcome.failure is None:
            continue
        if outcome.file != current:
            current = outcome.file
            print(current)
        where = f" (line {outcome.line})" if outcome.line else ""
        if outcome.failure is None:
            print(f"  ok    {outcome.name}")
            continue
        print(f"  FAIL  {outcome.name}{where}")
        for line in outcome.failure.splitlines()[1:]:  # the first names the scenario
            print(f"        {line}")
    for error in report.errors:
        print(f"error: {error}")
    failed = len(report.failed)
    passed = len(report.outcomes) - failed
    summary = f"{len(report.outcomes)} scenario(s) in {len(report.files)} file(s): "
    summary += f"{passed} passed, {failed} failed"
    if report.errors:
        summary += f", {len(report.errors)} error(s)"
    print(summary)
