"""The ``interlock`` parser registers the command group a command line names, or all."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import metadata

import pytest

from interlock.sdk.cli import build_parser


def _installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


# The SDK's tests also run where only interlock-sdk is installed (make test-sdk-pythons).
needs_workspace = pytest.mark.skipif(
    not _installed("interlock-service"), reason="needs every Interlock package (the workspace)"
)

EVERY_GROUP = {
    "adapter",
    "adapters",
    "approvals",
    "channels",
    "connections",
    "deployments",
    "events",
    "firings",
    "keys",
    "queues",
    "rules",
    "runs",
    "server",
    "worker",
}


def registered(parser: argparse.ArgumentParser) -> set[str]:
    [groups] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(groups.choices)


@needs_workspace
@pytest.mark.parametrize(
    ("argv", "groups"),
    [
        (["runs", "list"], {"runs"}),
        (["-vv", "--verbose", "rules", "check", "x.py"], {"rules"}),
        (None, EVERY_GROUP),
        (["--help"], EVERY_GROUP),
        (["-h", "runs"], EVERY_GROUP),
        (["runz"], EVERY_GROUP),  # a typo: the error lists every group
    ],
)
def test_only_the_named_group_is_registered(argv: list[str] | None, groups: set[str]) -> None:
    assert registered(build_parser(argv)) == groups


def test_a_command_of_one_group_does_not_import_the_others() -> None:
    probe = (
        "import sys; from interlock.sdk.cli import build_parser; "
        "build_parser(['runs', 'list']); "
        "print(sorted(m for m in ('interlock.service.store', 'interlock.service.settings', "
        "'sqlalchemy', 'httpx') if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == "[]"


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command line that names a command or group, depth first."""
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.extend(commands(sub, (*path, name)))
    return found


@needs_workspace
def test_every_command_and_group_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    every = commands(build_parser(None))
    assert ("rules", "resume-actions") in every
    assert len(every) > 40
    for command in every:
        with pytest.raises(SystemExit) as done:
            build_parser([*command, "--help"]).parse_args([*command, "--help"])
        assert done.value.code == 0, command
        out = capsys.readouterr().out
        assert out.startswith(f"usage: interlock {' '.join(command)}".rstrip()), command
