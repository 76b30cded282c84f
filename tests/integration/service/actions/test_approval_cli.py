"""``interlock approvals list | approve | reject``: the real command line (a subprocess)
against the API served by uvicorn over a real store and NATS (SQLite only: the store is
covered elsewhere)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integration.service.actions.api_cli import cli, serving_api
from integration.service.actions.dispatch_fixtures import (
    all_in,
    dispatching,
    eventually,
    make_rule,
    queue,
    running_services,
    states,
)
from integration.service.actions.receiver import Receiver
from interlock.rules import approve, webhook


@pytest.fixture
def sqlite_only(sqlite_url: str) -> str:
    return sqlite_url


async def test_list_approve_and_reject_from_the_command_line(
    sqlite_only: str, streams: str, tmp_path: Path
) -> None:
    async with (
        Receiver() as receiver,
        running_services(sqlite_only, streams, tmp_path / "spool") as services,
    ):
        ask = f"json://127.0.0.1:{receiver.port}/ask"
        yes = make_rule("yes", [approve(ask, title="Ship it?"), webhook(f"{receiver.url}/y")])
        no = make_rule("no", [approve(ask), webhook(f"{receiver.url}/n")])
        plain = make_rule("plain", [webhook(f"{receiver.url}/p")])
        (to_approve,) = await queue(services, yes)
        (to_reject,) = await queue(services, no)
        (unasked,) = await queue(services, plain)
        async with serving_api(services) as url, dispatching(services):
            for name in ("yes", "no"):
                await eventually(lambda n=name: _is(services, n, ["waiting", "held"]), what=name)
            status, out, err = await cli(url, tmp_path, "approvals", "list")
            assert status == 0, err
            assert str(to_approve.id) in out
            assert "Ship it?" in out

            status, out, err = await cli(  # a unique prefix of the id will do
                url, tmp_path, "approvals", "approve", str(to_approve.id)[:8], "--by", "ana"
            )
            assert (status, out.strip()) == (
                0,
                f"firing {to_approve.id} (rule yes): approved by ana: the actions after it run now",
            ), err
            status, out, err = await cli(
                url,
                tmp_path,
                "approvals",
                "reject",
                str(to_reject.id),
                "--reason",
                "no",
                "--json",
            )
            assert status == 0, err
            decided = json.loads(out)
            assert (decided["decision"], decided["decided_by"]) == ("rejected", "api")
            await eventually(lambda: all_in(services, "yes", "succeeded"))
            await eventually(lambda: all_in(services, "no", "cancelled"))

            status, out, err = await cli(url, tmp_path, "approvals", "approve", str(to_reject.id))
            assert status != 0
            assert len(err.strip().splitlines()) == 1  # one clear line, no traceback
            assert "was rejected by api" in err  # decided already: not "no approval"
            # What was not found: the firing, or the approval step of a firing that exists.
            status, _, err = await cli(url, tmp_path, "approvals", "approve", str(unasked.id))
            assert (status, err) == (
                1,
                f"interlock: error: firing {unasked.id} (rule 'plain') has no approval step: "
                "its approve action has not run yet, or its rule has none (see interlock "
                f"firings show {unasked.id}) (HTTP 404)\n",
            )
            status, _, err = await cli(url, tmp_path, "approvals", "reject", "0000ffff")
            assert (status, err) == (
                1,
                "interlock: error: no firing with the id '0000ffff' (no firing id starts so) "
                "(HTTP 404)\n",
            )
        assert len(receiver.paths("/y")) == 1
        assert receiver.paths("/n") == []


async def _is(services: object, rule: str, wanted: list[str]) -> bool:
    return await states(services, rule) == wanted  # type: ignore[arg-type]
