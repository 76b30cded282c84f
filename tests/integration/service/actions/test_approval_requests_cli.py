"""``interlock approvals`` on approvals whose request did not go out, and on decided ones:
the real command line (a subprocess) against the API served by uvicorn, a real
dispatcher, NATS and SQLite (the store's side runs on PostgreSQL in the contract suite).

The command line never reports something that does not happen: an approval nobody was
asked says so (``list``, ``show``); approving one whose request is still being retried
says its request is not sent any more, and the actions after it really run; one given up
is refused, and so is deciding a decided one, saying who decided it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from integration.service.actions.api_cli import cli, serving_api
from integration.service.actions.dispatch_fixtures import (
    START,
    dispatching,
    eventually,
    make_rule,
    queue,
    running_services,
    states,
)
from integration.service.actions.receiver import Receiver
from integration.service.actions.request_failures import RETRY, attempted, closed_port
from interlock.rules import approve, webhook
from interlock.rules.clock import FakeClock
from interlock.service.context import Services


@pytest.fixture
def sqlite_only(sqlite_url: str) -> str:
    return sqlite_url


async def test_the_command_line_says_what_deciding_an_unsent_approval_does(
    sqlite_only: str, streams: str, tmp_path: Path
) -> None:
    clock = FakeClock(START)
    async with (
        Receiver() as receiver,
        running_services(
            sqlite_only, streams, tmp_path / "spool", clock=clock, max_attempts=2, **RETRY
        ) as services,
    ):
        later = make_rule(
            "later", [approve("nobody-yet", title="Go?"), webhook(f"{receiver.url}/later")]
        )
        gone = make_rule(
            "gone",
            [approve(f"json://127.0.0.1:{closed_port()}/ask"), webhook(f"{receiver.url}/gone")],
        )
        (to_approve,) = await queue(services, later)
        (given_up,) = await queue(services, gone)
        async with serving_api(services) as url, dispatching(services):
            for name in ("later", "gone"):
                await eventually(lambda n=name: attempted(services, n, 1), what=name)

            status, out, err = await cli(url, tmp_path, "approvals", "list")
            assert status == 0, err
            header, *rows = out.splitlines()
            assert "STATE" in header.split()
            assert len(rows) == 2
            assert all("request_failed" in row.split() for row in rows)
            assert "pending" not in out
            assert (
                f"note: firing {to_approve.id} (rule later): its request could not be sent "
                "(no channel 'nobody-yet'" in err
            )
            assert "nobody was asked yet; tried again at" in err

            status, out, err = await cli(url, tmp_path, "approvals", "show", str(to_approve.id))
            assert status == 0, err
            shown = dict(line.split(maxsplit=1) for line in out.splitlines())
            assert shown["state:"] == "request_failed"
            assert shown["request_error:"].startswith("no channel 'nobody-yet'")
            assert shown["attempts:"] == "1"
            assert "sent_at:" not in shown

            # Approving it while its request is retried: accepted, and said as it is.
            status, out, err = await cli(
                url, tmp_path, "approvals", "approve", str(to_approve.id), "--by", "ana"
            )
            assert status == 0, err
            assert out.startswith(
                f"firing {to_approve.id} (rule later): approved by ana: the actions after it "
                "run now; its request had not gone out (no channel 'nobody-yet'"
            )
            assert out.rstrip().endswith("and is not sent any more")
            await eventually(lambda: _states_are(services, "later", ["succeeded", "succeeded"]))
            assert len(receiver.paths("/later")) == 1  # what it said happened, happened

            # The other one's retries run out: it cannot be decided any more.
            clock.advance("1m")
            await eventually(lambda: _states_are(services, "gone", ["failed", "cancelled"]))
            status, out, err = await cli(
                url, tmp_path, "approvals", "approve", str(given_up.id), "--by", "ana"
            )
            assert (status, out) == (1, "")
            assert len(err.strip().splitlines()) == 1  # one clear line, no traceback
            assert "was never asked: its request could not be sent" in err
            assert "given up after 2 attempt(s)" in err
            assert err.rstrip().endswith("(HTTP 409)")
            assert "approved" not in err

            status, out, err = await cli(url, tmp_path, "approvals", "list", "--decided", "--json")
            assert status == 0, err
            listed = {a["rule"]: a for a in json.loads(out)}
            assert listed["gone"]["state"] == "request_given_up"
            assert listed["later"]["state"] == "approved"
            assert listed["later"]["request_state"] == "not_sent"
        assert receiver.paths("/gone") == []


async def test_deciding_a_decided_approval_says_who_decided_it(
    sqlite_only: str, streams: str, tmp_path: Path
) -> None:
    async with (
        Receiver() as receiver,
        running_services(sqlite_only, streams, tmp_path / "spool") as services,
    ):
        ask = f"json://127.0.0.1:{receiver.port}/ask"
        (firing,) = await queue(
            services, make_rule("once", [approve(ask), webhook(f"{receiver.url}/once")])
        )
        async with serving_api(services) as url, dispatching(services):
            await eventually(lambda: _states_are(services, "once", ["waiting", "held"]))
            status, out, err = await cli(
                url, tmp_path, "approvals", "reject", str(firing.id), "--by", "bob"
            )
            assert status == 0, err
            assert out.strip() == (
                f"firing {firing.id} (rule once): rejected by bob: the actions after it are "
                "cancelled"
            )
            for verb in ("approve", "reject"):
                status, out, err = await cli(url, tmp_path, "approvals", verb, str(firing.id))
                assert (status, out) == (1, ""), err
                assert "was rejected by bob at" in err
                assert "(HTTP 409)" in err
                assert "no approval" not in err
                assert "404" not in err
            status, out, err = await cli(url, tmp_path, "approvals", "show", str(firing.id))
            assert status == 0, err
            assert "state:         rejected" in out
            assert "decided_by:    bob" in out
            status, out, err = await cli(url, tmp_path, "approvals", "show", str(uuid.uuid4()))
            assert (status, out) == (1, "")
            assert err.startswith("interlock: error: no approval for firing ")
            assert len(err.strip().splitlines()) == 1
        assert receiver.paths("/once") == []


async def _states_are(services: Services, rule: str, wanted: list[str]) -> bool:
    return await states(services, rule) == wanted
