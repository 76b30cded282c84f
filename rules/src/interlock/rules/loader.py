"""Loading rule modules: Python files that define :class:`~interlock.rules.rule.Rule` objects.

Every module-level ``Rule`` (and every ``Rule`` inside a module-level list or tuple) is
collected. A module that fails to import — a rule that does not validate, a syntax error,
any exception — is reported with its file and line, and the other modules still load.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path

import msgspec

from interlock.rules.errors import RuleDefinitionError, RuleIssue
from interlock.rules.rule import Rule, duplicate_name_issues

__all__ = ["LoadProblem", "LoadResult", "load_paths"]


class LoadProblem(msgspec.Struct, frozen=True, kw_only=True):
    """A module that could not be loaded, or an invalid rule in it."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class LoadResult(msgspec.Struct, kw_only=True):
    """Rules found, where each came from, and every problem."""

    rules: list[Rule]
    origins: dict[str, str]
    problems: list[LoadProblem]


def _files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.py") if not p.name.startswith("_")))
        else:
            files.append(path)
    return files


def _rules_in(namespace: dict[str, object]) -> list[Rule]:
    found: list[Rule] = []
    for value in namespace.values():
        if isinstance(value, Rule):
            found.append(value)
        elif isinstance(value, list | tuple):
            found.extend(item for item in value if isinstance(item, Rule))
    unique: dict[int, Rule] = {id(rule): rule for rule in found}
    return list(unique.values())


def _line_in(file: Path, exc: BaseException) -> int | None:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).resolve() == file.resolve():
            return frame.lineno
    if isinstance(exc, SyntaxError):
        return exc.lineno
    return None


def load_paths(paths: list[Path]) -> LoadResult:
    """Import each rule module under ``paths`` (files or folders) and collect its rules."""
    result = LoadResult(rules=[], origins={}, problems=[])
    for index, file in enumerate(_files(paths)):
        if not file.is_file():
            result.problems.append(LoadProblem(file=str(file), line=None, message="no such file"))
            continue
        name = f"interlock_rules_module_{index}_{file.stem}"
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            result.problems.append(
                LoadProblem(file=str(file), line=None, message="not a Python module")
            )
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except RuleDefinitionError as exc:
            line = _line_in(file, exc)
            result.problems.extend(
                LoadProblem(file=str(file), line=line, message=str(issue)) for issue in exc.issues
            )
            continue
        except Exception as exc:  # noqa: BLE001 - any error in a user's module is reported
            message = f"{type(exc).__name__}: {exc}"
            line = _line_in(file, exc)
            result.problems.append(LoadProblem(file=str(file), line=line, message=message))
            continue
        finally:
            sys.modules.pop(name, None)
        for rule in _rules_in(vars(module)):
            result.rules.append(rule)
            result.origins.setdefault(rule.name, str(file))
    duplicates: list[RuleIssue] = duplicate_name_issues(result.rules)
    result.problems.extend(
        LoadProblem(file=result.origins.get(issue.rule, "?"), line=None, message=str(issue))
        for issue in duplicates
    )
    return result
