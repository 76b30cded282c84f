"""The import rule between the workspace's packages, checked on their source.

Dependencies point one way (``docs/plugins.md``, "The import rule"):

- ``interlock.sdk`` imports no other Interlock package: it is what producers install,
  and the interface package (the executor plugin API) both sides import;
- ``interlock.rules`` imports the SDK only;
- ``interlock.adapters`` imports the SDK only (never the service: ``interlock-service``
  depends on ``interlock-adapters``, not the other way round);
- ``interlock.service`` imports the SDK, the rules, and of the adapters only their
  polling framework (``base``, ``runner``, ``config``, ``checkpoints``), which itself
  imports nothing but the SDK; a technology's module (``interlock.adapters.airflow``,
  ``.s3``, ...) is reached through entry points, never imported.

Every import counts: at module level, inside a function, or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sdk", "rules", "adapters", "service")
ADAPTER_FRAMEWORK = frozenset(
    f"interlock.adapters.{name}" for name in ("base", "runner", "config", "checkpoints")
)


def _module_name(package: str, path: Path) -> str:
    parts = list(path.relative_to(ROOT / package / "src").with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(package: str) -> Iterator[tuple[str, int, str]]:
    """(importing module, line, imported module) for every Interlock import of ``package``."""
    for path in sorted((ROOT / package / "src").rglob("*.py")):
        module = _module_name(package, path)
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".")
                    anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                    base = ".".join([*anchor, base] if base else anchor)
                # ``from interlock.adapters import base`` imports interlock.adapters.base.
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            else:
                continue
            for target in targets:
                if target == "interlock" or target.startswith("interlock."):
                    yield module, node.lineno, target


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def _framework(name: str) -> bool:
    """Whether ``name`` is (in) the adapters' polling framework, or their package."""
    return name == "interlock.adapters" or any(_within(name, m) for m in ADAPTER_FRAMEWORK)


def _refusal(package: str, importer: str, imported: str) -> str | None:
    """Why ``importer`` (of ``package``) must not import ``imported``; ``None`` if it may."""
    own = f"interlock.{package}"
    if _within(imported, "interlock.sdk"):
        return None
    if _within(imported, own):
        if package == "adapters" and _framework(importer) and not _framework(imported):
            return "the adapters' framework imports only itself and the SDK"
        return None
    if package == "service":
        if _within(imported, "interlock.rules") or _framework(imported):
            return None
        if _within(imported, "interlock.adapters"):
            return (
                "the service imports the adapters' framework only (base, runner, config, "
                "checkpoints); a technology's module is loaded through entry points"
            )
    return f"interlock.{package} may not import {imported.split('.')[1]!r}"


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_what_the_import_rule_allows(package: str) -> None:
    broken = [
        f"{importer}:{line} imports {imported}: {why}"
        for importer, line, imported in _imports(package)
        if (why := _refusal(package, importer, imported)) is not None
    ]
    assert broken == []


@pytest.mark.parametrize(
    ("package", "importer", "imported", "allowed"),
    [
        ("service", "interlock.service.adapter_polls", "interlock.adapters.runner", True),
        ("service", "interlock.service.x", "interlock.adapters.airflow.actions", False),
        ("service", "interlock.service.x", "interlock.adapters.s3", False),
        ("service", "interlock.service.x", "interlock.rules.rule", True),
        ("adapters", "interlock.adapters.prefect.actions", "interlock.service.context", False),
        ("adapters", "interlock.adapters.runner", "interlock.adapters.s3", False),
        ("adapters", "interlock.adapters.runner", "interlock.adapters.base.PollingAdapter", True),
        ("adapters", "interlock.adapters.s3.poller", "interlock.adapters.base", True),
        ("rules", "interlock.rules.rule", "interlock.service.store", False),
        ("rules", "interlock.rules.rule", "interlock.adapters.base", False),
        ("sdk", "interlock.sdk.publisher", "interlock.rules.clock", False),
        ("sdk", "interlock.sdk.publisher", "interlock.sdk.spool", True),
    ],
)
def test_the_rule_itself(package: str, importer: str, imported: str, allowed: bool) -> None:
    assert (_refusal(package, importer, imported) is None) is allowed


def test_the_imports_are_found() -> None:
    found = {target for _, _, target in _imports("service")}
    assert "interlock.adapters.runner" in found  # from interlock.adapters.runner import ...
    assert "interlock.sdk.executors.ActionFailed" in found  # what a from-import names
    assert "interlock.service.context.Services" in found  # under TYPE_CHECKING too
