"""Each package ships ``py.typed`` (PEP 561), so a user's type checker reads its types.

A rule author running mypy on their rule modules gets the DSL's signatures: ``title=123``
is an error there, not ``Any`` (without the marker, mypy skips installed packages).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import interlock.adapters
import interlock.rules
import interlock.sdk
import interlock.service

RULES = """
from interlock.rules import Rule, notify, on
from interlock.sdk import emit

oops = Rule(name="oops", when=on("job.failed"), then=[notify("ops", title=123)])
emit("job.done", 42)
"""


@pytest.mark.parametrize(
    "package", [interlock.sdk, interlock.rules, interlock.adapters, interlock.service]
)
def test_every_package_has_a_py_typed_marker(package: object) -> None:
    [folder] = getattr(package, "__path__", [])
    assert (Path(folder) / "py.typed").is_file()


@pytest.mark.slow
def test_a_users_type_checker_reads_the_dsl(tmp_path: Path) -> None:
    (tmp_path / "rules.py").write_text(RULES)
    (tmp_path / "none.ini").write_text("[mypy]\n")  # not the repository's configuration
    options = ["--strict", "--cache-dir", str(tmp_path / "cache"), "--config-file", "none.ini"]
    done = subprocess.run(
        [sys.executable, "-m", "mypy", *options, "rules.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 'Argument "title" to "notify" has incompatible type "int"' in done.stdout, done.stdout
    assert 'Argument 2 to "emit" has incompatible type "int"' in done.stdout, done.stdout
    assert "missing library stubs or py.typed" not in done.stdout
