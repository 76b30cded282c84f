"""Running scenario files: find them, load their rules, run each scenario, report.

Used by ``interlock rules test PATH`` (:mod:`.cli`). A folder is searched for
``*.test.toml`` files; a file is taken whatever its name. A scenario that runs and whose
firings differ is a **failure**; a file or rule module that cannot be loaded, or a
scenario that cannot run as written, is an **error** (with its file and line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from interlock.rules.loader import load_paths
from interlock.rules.rule import Rule
from interlock.rules.testing.errors import ScenarioError, ScenarioFailed, ScenarioFileError
from interlock.rules.testing.rule_files import select_rules
from interlock.rules.testing.scenario import Scenario
from interlock.rules.testing.scenario_files import ScenarioFile, ScenarioSpec, read_scenario_file

__all__ = ["SCENARIO_SUFFIX", "Outcome", "Report", "run_paths", "scenario_files"]

SCENARIO_SUFFIX = ".test.toml"


@dataclass(frozen=True)
class Outcome:
    """One scenario's result: ``failure`` holds the diff when it failed."""

    file: Path
    name: str
    line: int | None
    failure: str | None = None


@dataclass
class Report:
    """Every scenario's outcome, and every file that could not be run."""

    files: list[Path] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        """The scenarios that failed."""
        return [outcome for outcome in self.outcomes if outcome.failure is not None]


def scenario_files(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """The scenario files under ``paths``, and a problem for each path that gives none."""
    found: list[Path] = []
    problems: list[str] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(path.rglob(f"*{SCENARIO_SUFFIX}"))
            if not inside:
                problems.append(f"{path}: no scenario files (*{SCENARIO_SUFFIX}) in this folder")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            problems.append(f"{path}: no such file or folder")
    return found, problems


def run_paths(paths: list[Path]) -> Report:
    """Run every scenario of the scenario files under ``paths``."""
    files, problems = scenario_files(paths)
    report = Report(files=files, errors=problems)
    loaded: dict[tuple[Path, ...], list[Rule]] = {}
    for path in files:
        try:
            scenario_file = read_scenario_file(path)
        except ScenarioFileError as exc:
            report.errors.extend(str(problem) for problem in [exc, *exc.others])
            continue
        rules = _rules(scenario_file, loaded, report)
        if rules is None:
            continue
        for index, spec in enumerate(scenario_file.scenarios):
            try:
                outcome = _run(scenario_file, index, spec, rules)
            except ScenarioError as exc:
                report.errors.append(str(exc))
                continue
            report.outcomes.append(outcome)
    return report


def _rules(
    scenario_file: ScenarioFile, loaded: dict[tuple[Path, ...], list[Rule]], report: Report
) -> list[Rule] | None:
    key = tuple(path.resolve() for path in scenario_file.rules)
    if key not in loaded:
        result = load_paths(list(scenario_file.rules))
        if result.problems:
            report.errors.extend(
                f"{scenario_file.path}: the rules it tests do not load: {problem}"
                for problem in result.problems
            )
            return None
        loaded[key] = result.rules
    return loaded[key]


def _run(scenario_file: ScenarioFile, index: int, spec: ScenarioSpec, rules: list[Rule]) -> Outcome:
    """Run one scenario; a :class:`ScenarioError` says where in the file it is."""
    file = str(scenario_file.path)
    where = f"scenario[{index}]"

    def error(line: int | None, field: str, exc: Exception) -> ScenarioFileError:
        return ScenarioFileError(file, line, f"{where}{field}", f"(scenario {spec.name!r}) {exc}")

    try:
        chosen = select_rules(rules, spec.select) if spec.select is not None else rules
    except ScenarioError as exc:
        raise error(spec.line, ".select", exc) from exc
    names = {rule.name for rule in chosen}
    for number, expected in enumerate(spec.expect):
        if expected.rule not in names:
            known = ", ".join(sorted(names)) or "none"
            problem = ValueError(f"no rule named {expected.rule!r} is tested (the rules: {known})")
            raise error(expected.line, f".expect[{number}].rule", problem)
    try:
        scenario = Scenario(
            chosen, start=spec.start, tz=spec.tz, lag=spec.lag, name=spec.name,
            lateness_tolerance=scenario_file.lateness_tolerance,
        )  # fmt: skip
    except ScenarioError as exc:
        raise error(spec.line, "", exc) from exc
    for number, event in enumerate(spec.events):
        try:
            if event.every is not None and event.until is not None:
                scenario.repeat(
                    event.event, every=event.every, at=event.at, until=event.until,
                    resource=event.resource, payload=event.payload, related=event.related,
                    source=event.source,
                )  # fmt: skip
            else:
                scenario.event(
                    event.event, at=event.at, resource=event.resource, payload=event.payload,
                    related=event.related, source=event.source, id=event.id,
                    published=event.published,
                )  # fmt: skip
        except ScenarioError as exc:
            raise error(event.line, f".events[{number}]", exc) from exc
    try:
        scenario.advance_to(spec.until)
        scenario.expect(*spec.expect)
    except ScenarioFailed as exc:
        return Outcome(scenario_file.path, spec.name, spec.line, failure=str(exc))
    except ScenarioError as exc:
        raise error(spec.line, "", exc) from exc
    return Outcome(scenario_file.path, spec.name, spec.line)
