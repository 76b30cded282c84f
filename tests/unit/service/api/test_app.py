"""The app factory's handling of controllers written by other parts of the service."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

import pytest

from interlock.service.api.app import (
    OPTIONAL_CONTROLLERS,
    api_controllers,
    default_controllers,
    optional_controllers,
)


def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> str:
    name = f"optional_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_a_module_that_does_not_exist_yet_adds_nothing() -> None:
    assert optional_controllers("interlock.service.api.not_written_yet", ["X"]) == []


def test_an_existing_module_is_included(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = module(
        tmp_path,
        monkeypatch,
        "from litestar import Controller\nclass ThingController(Controller):\n    path = '/t'\n",
    )
    (controller,) = optional_controllers(name, ["ThingController"])
    assert controller.__name__ == "ThingController"


def test_a_broken_module_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = module(tmp_path, monkeypatch, "import interlock.service.no_such_dependency\n")
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency"):
        optional_controllers(name, ["ThingController"])
    other = module(tmp_path, monkeypatch, "raise RuntimeError('bug in the module')\n")
    with pytest.raises(RuntimeError, match="bug in the module"):
        optional_controllers(other, ["ThingController"])


def test_a_missing_class_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = module(tmp_path, monkeypatch, "ThingController = 3\n")
    with pytest.raises(ImportError, match="must define the Litestar controller ThingController"):
        optional_controllers(name, ["ThingController"])


def test_own_controllers() -> None:
    names = [controller.__name__ for controller in api_controllers()]
    assert names == [
        "HealthController",
        "EventsController",  # publishing and querying events
        "RuleController",
        "WindowController",
        "FiringController",
        "ChannelController",
        "ConnectionController",
        "KeyController",
    ]


def test_default_controllers_include_every_optional_module_present() -> None:
    names = {controller.__name__ for controller in default_controllers()}
    for module_name, class_names in OPTIONAL_CONTROLLERS:
        if importlib.util.find_spec(module_name) is not None:
            assert set(class_names) <= names, module_name
