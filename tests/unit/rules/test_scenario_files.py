"""Scenario files: read field by field; every mistake named with its file, line and field."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from interlock.rules.testing import ScenarioFileError
from interlock.rules.testing.runner import run_paths
from interlock.rules.testing.scenario_files import read_scenario_file

RULES = """
from interlock.rules import Rule, absent, deadline, notify

sla = Rule(
    name="sla",
    when=absent("db.table.updated", by=deadline("09:00", tz="Europe/Berlin")),
    then=[notify("team", title="{{ window.deadline }}")],
)
"""

GOOD = """
rules = "rules.py"
tz = "Europe/Berlin"

[[scenario]]
name = "missed"
start = "2026-06-01 10:00"
until = 2026-06-02T12:00:00
lag = "20s"
events = [
  { at = "2026-06-02 10:00", event = "db.table.updated", resource = { id = "t", team = "x" } },
]

  [[scenario.expect]]
  rule = "sla"
  window = ["2026-06-01 09:00", "2026-06-02 09:00"]
  expected = 1
  arrived = 0

  [[scenario.expect]]
  rule = "sla"
  status = "resolved"
  at = "2026-06-02 10:00"
"""


def write(folder: Path, text: str, name: str = "s.test.toml") -> Path:
    (folder / "rules.py").write_text(textwrap.dedent(RULES))
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ScenarioFileError) as raised:
        read_scenario_file(path)
    return [str(problem) for problem in [raised.value, *raised.value.others]]


def test_a_good_file_reads_and_passes(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    scenario_file = read_scenario_file(path)
    [spec] = scenario_file.scenarios
    assert (spec.name, spec.tz, spec.lag, spec.line) == (
        "missed",
        "Europe/Berlin",
        timedelta(seconds=20),
        4,
    )
    assert [item.line for item in spec.expect] == [13, 19]
    assert spec.events[0].resource == {"id": "t", "team": "x"}
    assert scenario_file.rules == [tmp_path / "rules.py"]
    report = run_paths([tmp_path])
    assert (report.errors, report.failed, len(report.outcomes)) == ([], [], 1)


def test_a_scenario_that_differs_fails_with_its_diff(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('status = "resolved"\n', ""))
    report = run_paths([tmp_path])
    [failed] = report.failed
    assert failed.failure is not None
    assert "- fired     sla  at 2026-06-02 10:00 CEST  (line 19)" in failed.failure
    assert "+ resolved  sla  window" in failed.failure
    assert "differs from the expected one above in status: expected fired, got resolved" in (
        failed.failure
    )


MISTAKES = [
    ('lag = "20s"', 'lagg = "20s"',
     ":8: scenario[0].lagg: is not a known field (did you mean 'lag'?)"),
    ('start = "2026-06-01 10:00"', 'start = "2026-06-01 25:00"',
     ":6: scenario[0].start: '2026-06-01 25:00' is not a time"),
    ('name = "missed"\n', "", ":4: scenario[0]: 'name' is required"),
    ('tz = "Europe/Berlin"', 'tz = "Europe/Paris2"', ":2: tz: 'Europe/Paris2' is not a time zone"),
    ("expected = 1", 'expected = "one"',
     ":16: scenario[0].expect[0].expected: must be a whole number of events, not the string 'one'"),
    ('resource = { id = "t", team = "x" }', "resource = 3",
     ":10: scenario[0].events[0].resource: must be an id string"),
    ('window = ["2026-06-01 09:00", "2026-06-02 09:00"]', 'window = ["2026-06-01 09:00"]',
     ":15: scenario[0].expect[0].window: must be [start, deadline], two times"),
    ('lag = "20s"', 'lag = "-1m"', ":8: scenario[0].lag: '-1m' is not a duration"),
    ('status = "resolved"', "status = true",
     ":21: scenario[0].expect[1].status: must be 'fired' or 'resolved', not the boolean true"),
    ("until = 2026-06-02T12:00:00", 'until = "2026-05-01 12:00"',
     ":7: scenario[0].until: is before start"),
    ('event = "db.table.updated"', 'every = "1h", event = "db.table.updated"',
     ":10: scenario[0].events[0]: a repeated event needs both 'every' and 'until' ('until' is "
     "missing)"),
    ('event = "db.table.updated"', 'every = "0s", until = "2026-06-02 11:00", event = "a.b"',
     ":10: scenario[0].events[0].every: must be longer than 0s"),
    ('event = "db.table.updated"', 'every = "1h", until = "x", event = "a.b"',
     ":10: scenario[0].events[0].until: 'x' is not a time"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "expected"), MISTAKES)
def test_each_mistake_is_named_with_its_line_and_field(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    assert problems(path) == [f"{path}{expected}" + problems(path)[0].split(expected)[1]]


def test_every_mistake_of_a_file_is_reported(tmp_path: Path) -> None:
    text = GOOD.replace('rule = "sla"', 'rule = "sla"\n  lat = true').replace("20s", "x")
    found = problems(write(tmp_path, text))
    assert [problem.split(": ", 2)[1] for problem in found] == [
        "scenario[0].lag",
        "scenario[0].expect[0].lat",
        "scenario[0].expect[1].lat",
    ]


def test_toml_that_does_not_parse_gives_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'rules = "rules.py"\n[[scenario]\n')
    [problem] = problems(path)
    assert problem.startswith(f"{path}:2: is not valid TOML: ")


def test_what_cannot_run_is_an_error_not_a_failure(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('rule = "sla"', 'rule = "slaa"', 1))
    report = run_paths([tmp_path])
    assert report.outcomes == []
    assert report.errors == [
        f"{tmp_path / 's.test.toml'}:13: scenario[0].expect[0].rule: (scenario 'missed') "
        "no rule named 'slaa' is tested (the rules: sla)"
    ]
    write(tmp_path, GOOD.replace('event = "db.table.updated"', 'event = "db..updated"'))
    [error] = run_paths([tmp_path]).errors
    assert error.startswith(f"{tmp_path / 's.test.toml'}:10: scenario[0].events[0]: ")
    assert "empty token" in error
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_paths([empty]).errors == [f"{empty}: no scenario files (*.test.toml) in this folder"]
