"""References in the real command line (a subprocess) against the API served by uvicorn:
``rules apply`` prints each missing name under its rule in the plan and applies it
anyway; ``rules check`` stays offline; ``rules check --strict`` asks the service and
fails naming the rule and the field; with everything created, neither says a word."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration.service.actions.api_cli import cli, serving_api
from integration.service.actions.request_failures import closed_port

from .conftest import Rig

MODULE = """
from interlock.rules import Rule, on, pause_rule, run_deployment

late = Rule(
    name="sales-late",
    when=on("sla.missed"),
    then=[run_deployment("backfill-sales"), pause_rule("reports-nightly")],
)
reports = Rule(name="reports-nightly", when=on("reports.due"), then=[])
"""
MISSING = "then[0].deployment: deployment 'backfill-sales' does not exist (yet)"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only: the warnings' store side runs on both in test_rule_references.py."""
    return sqlite_url


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "sales.py").write_text(MODULE)
    return folder


async def test_apply_prints_the_warnings_in_the_plan_and_applies(
    rig: Rig, rules_dir: Path, tmp_path: Path
) -> None:
    async with serving_api(rig.services) as url:
        status, out, err = await cli(url, tmp_path, "rules", "apply", str(rules_dir), "--dry-run")
        assert status == 0, err
        lines = out.splitlines()
        created = lines.index("  created  sales-late")
        assert lines[created + 1].startswith(f"  warning  {MISSING} (create it with ")
        assert "  created  reports-nightly" in lines  # pause_rule's target: same batch
        assert out.count("warning") == 1
        assert "1 warning(s)" in err
        assert await rig.services.store.rules.list() == []

        status, out, err = await cli(url, tmp_path, "rules", "apply", str(rules_dir))
        assert status == 0, err
        assert f"  warning  {MISSING}" in out
        names = [record.name for record in await rig.services.store.rules.list()]
        assert names == ["reports-nightly", "sales-late"]  # applied all the same


async def test_check_is_offline_and_strict_asks_the_service(
    rig: Rig, rules_dir: Path, tmp_path: Path
) -> None:
    nothing = f"http://127.0.0.1:{closed_port()}"
    status, out, err = await cli(nothing, tmp_path, "rules", "check", str(rules_dir), "-q")
    assert (status, out) == (0, "2 rule(s) checked: ok\n"), err  # no service needed

    async with serving_api(rig.services) as url:
        status, out, err = await cli(
            url, tmp_path, "rules", "check", str(rules_dir), "--strict", "-q"
        )
        assert status == 1, err
        assert out.splitlines() == [
            f"error: rule 'sales-late': {MISSING} (create it with `interlock deployments "
            "create backfill-sales ...` or declare it in config/deployments.toml; until "
            "then this action fails when the rule fires)",
            "2 rule(s) checked: 1 problem(s)",
        ]
        assert await rig.services.store.rules.list() == []  # checking applies nothing

        await rig.services.store.queues.create("etl")
        await rig.services.store.deployments.create(
            "backfill-sales", target={"type": "process", "command": ["true"]}, queue="etl"
        )
        status, out, err = await cli(
            url, tmp_path, "rules", "check", str(rules_dir), "--strict", "-q"
        )
        assert (status, out) == (0, "2 rule(s) checked: ok\n"), err
        status, out, err = await cli(url, tmp_path, "rules", "apply", str(rules_dir))
        assert status == 0, err
        assert "warning" not in out + err

    status, _, err = await cli(nothing, tmp_path, "rules", "check", str(rules_dir), "--strict")
    assert status == 1
    assert "cannot reach the Interlock API" in err
