"""Process targets: what is accepted, what is refused and how the message says so."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from interlock.service.cli.deployments import BadParameter, parse_params
from interlock.service.deployments.entrypoint import main as entrypoint_main
from interlock.service.deployments.process import last_line, outcome
from interlock.service.deployments.targets import PARAMETERS_VARIABLE, parse_target
from interlock.service.store import InvalidRecord


def test_a_command_target() -> None:
    target = parse_target("d", {"type": "process", "command": ["echo", "hi"], "env": {"A": "1"}})
    assert target.argv() == ["echo", "hi"]
    run_id = uuid.uuid4()
    env = target.environment({"x": 1}, run_id=run_id, deployment="d")
    assert json.loads(env[PARAMETERS_VARIABLE]) == {"x": 1}
    assert (env["INTERLOCK_RUN_ID"], env["INTERLOCK_DEPLOYMENT"], env["A"]) == (
        str(run_id),
        "d",
        "1",
    )


def test_an_entrypoint_target_runs_with_this_interpreter() -> None:
    target = parse_target("d", {"type": "process", "entrypoint": "pkg.mod:func", "cwd": "/tmp"})
    assert target.argv() == [
        sys.executable,
        "-m",
        "interlock.service.deployments.entrypoint",
        "pkg.mod:func",
    ]
    assert target.cwd == "/tmp"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"type": "webhook"}, "target.type must be 'process'"),
        ({"command": ["x"]}, "target.type must be 'process'"),
        ({"type": "process"}, "target needs exactly one of 'command'"),
        ({"type": "process", "command": ["x"], "entrypoint": "a:b"}, "exactly one of"),
        ({"type": "process", "command": "echo hi"}, "target.command must be a non-empty list"),
        ({"type": "process", "command": [""]}, "target.command must be a non-empty list"),
        ({"type": "process", "command": ["x", 1]}, "target.command must be a non-empty list"),
        ({"type": "process", "entrypoint": "pkg.mod"}, "target.entrypoint must read"),
        ({"type": "process", "entrypoint": "pkg mod:f"}, "target.entrypoint must read"),
        ({"type": "process", "command": ["x"], "cwd": 3}, "target.cwd must be a directory"),
        ({"type": "process", "command": ["x"], "env": {"A": 1}}, "target.env must map"),
        ({"type": "process", "command": ["x"], "shell": True}, "target.shell is not a field"),
    ],
)
def test_bad_targets_name_the_field(target: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRecord) as refused:
        parse_target("reports", target)
    assert str(refused.value).startswith("deployment 'reports': ")
    assert message in str(refused.value)


def test_outcomes(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("one\ntwo\n\n")
    assert last_line(log) == "two"
    assert last_line(tmp_path / "missing.log") == ""
    assert outcome(0, log) == ("completed", "exit code 0")
    assert outcome(2, log) == ("failed", "exit code 2: two")
    assert outcome(-9, log) == ("crashed", "killed by SIGKILL: two")
    log.write_text("x" * 1000)
    assert len(last_line(log)) == 300


def test_the_entrypoint_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "flowmod.py").write_text(
        "def greet(name):\n    print('hi', name)\n\n"
        "async def agreet(name):\n    print('ahi', name)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(PARAMETERS_VARIABLE, json.dumps({"name": "ada"}))
    assert entrypoint_main(["flowmod:greet"]) == 0
    assert entrypoint_main(["flowmod:agreet"]) == 0
    assert capsys.readouterr().out == "hi ada\nahi ada\n"
    assert entrypoint_main(["flowmod:missing"]) == 2
    assert "cannot load entry point flowmod:missing" in capsys.readouterr().err
    monkeypatch.setenv(PARAMETERS_VARIABLE, json.dumps({"wrong": 1}))
    assert entrypoint_main(["flowmod:greet"]) == 1
    assert "TypeError" in capsys.readouterr().err
    monkeypatch.setenv(PARAMETERS_VARIABLE, "[1]")
    assert entrypoint_main(["flowmod:greet"]) == 2
    assert entrypoint_main([]) == 2


def test_cli_parameters() -> None:
    assert parse_params(["n=3", "full=true", "name=ada", 'tags=["a"]', "eq=a=b", "empty="]) == {
        "n": 3,
        "full": True,
        "name": "ada",
        "tags": ["a"],
        "eq": "a=b",
        "empty": "",
    }
    with pytest.raises(BadParameter, match="must read key=value"):
        parse_params(["novalue"])
