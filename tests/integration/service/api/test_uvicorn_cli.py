"""The API served by uvicorn on a free port, used over real HTTP by httpx and by the real
``interlock`` command line (a subprocess, entry points and all)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn

from harness.nats import nats_client, read_events
from interlock.rules.engine.firing import Firing
from interlock.service.api.app import check_can_serve

from .conftest import Rig

INTERLOCK = str(Path(sys.executable).with_name("interlock"))

RULE_MODULE = """
from interlock.rules import Rule, notify, on, payload

job_failed = Rule(
    name="job-failed",
    description="{description}",
    when=on("job.failed", where=payload.attempt >= 2),
    then=[notify("ops", title="{{{{ event.resource.id }}}} failed")],
)
"""


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only here: these tests are about HTTP and the command line, not the store."""
    return f"sqlite:///{tmp_path / 'interlock.db'}"


@dataclass
class Served:
    rig: Rig
    url: str
    tmp: Path

    async def cli(
        self, *args: str, key: str | None = None, stdin: str | None = None
    ) -> tuple[int, str, str]:
        """Run ``interlock ARGS`` against this API; return (status, stdout, stderr)."""
        settings = self.rig.services.settings
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.tmp),
            "INTERLOCK_API_URL": self.url,
            "INTERLOCK_DATABASE_URL": settings.database_url,
            "INTERLOCK_DATA_DIR": str(self.tmp / "cli-data"),
            "INTERLOCK_SECRET_KEY": settings.secret_key.get_secret_value()
            if settings.secret_key
            else "",
        }
        if key:
            env["INTERLOCK_API_KEY"] = key
        process = await asyncio.create_subprocess_exec(
            INTERLOCK,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.tmp,
            env=env,
        )
        out, err = await asyncio.wait_for(
            process.communicate(stdin.encode() if stdin is not None else None), timeout=60
        )
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def served(rig: Rig, tmp_path: Path) -> AsyncIterator[Served]:
    await check_can_serve(rig.services)
    config = uvicorn.Config(rig.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 60
    while not (server.started or task.done() or time.monotonic() > deadline):  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start within 60s"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(rig=rig, url=f"http://127.0.0.1:{port}", tmp=tmp_path)
    finally:
        server.should_exit = True
        await task


async def test_uvicorn_serves_events_into_jetstream(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        assert (await client.get("/api/health")).json()["status"] == "ok"
        batch = [{"event": "job.done", "resource": {"id": f"job-{i}"}} for i in range(50)]
        response = await client.post("/api/events", json=batch)
        assert response.status_code == 202
        assert response.json()["stored"] == 50
        bad = await client.post(
            "/api/events", content=b"[{]", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 400
        schema = await client.get("/schema/openapi.json")
        assert schema.status_code == 200
    async with nats_client(served.rig.nats_url) as nc:
        stored = await read_events(nc, 50)
    assert [e.resource["id"] for e in stored] == [f"job-{i}" for i in range(50)]


async def test_cli_rules_apply_dry_run_list_pause_resume(served: Served) -> None:
    module = served.tmp / "rules" / "jobs.py"
    module.parent.mkdir()
    module.write_text(RULE_MODULE.format(description="twice"))

    status, out, err = await served.cli("rules", "apply", str(module.parent), "--dry-run")
    assert status == 0, err
    assert "created  job-failed" in out
    assert "dry run" in err
    assert (await served.rig.services.store.rules.list()) == []

    status, out, err = await served.cli("rules", "apply", str(module))
    assert status == 0, err
    assert "created  job-failed (version 1)" in out

    module.write_text(RULE_MODULE.format(description="three times"))
    status, out, err = await served.cli("rules", "apply", str(module), "--dry-run")
    assert status == 0, err
    assert "updated  job-failed (version 1)" in out
    assert 'description: "twice" -> "three times"' in out

    status, out, _ = await served.cli("rules", "list")
    assert status == 0
    header, row = out.splitlines()
    assert header.split() == ["NAME", "VERSION", "STATE", "TRIGGER", "NEXT"]
    assert row.split()[:4] == ["job-failed", "1", "active", "event"]

    status, out, _ = await served.cli("rules", "pause", "job-failed")
    assert (status, out) == (0, "rule job-failed paused\n")
    assert served.rig.services.rules.status("job-failed").enabled is False
    status, out, _ = await served.cli("rules", "resume", "job-failed")
    assert (status, out) == (0, "rule job-failed resumed\n")

    status, out, _ = await served.cli("rules", "list", "--json")
    assert json.loads(out)[0]["name"] == "job-failed"


async def test_cli_errors_are_one_line(served: Served) -> None:
    status, out, err = await served.cli("rules", "pause", "nope")
    assert status == 1
    assert out == ""
    assert err == "interlock: error: no rule 'nope' (HTTP 404)\n"

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    status, _, err = await served.cli("rules", "list", "--api-url", f"http://127.0.0.1:{closed}")
    assert status == 1
    assert err.startswith(
        f"interlock: error: cannot reach the Interlock API at http://127.0.0.1:{closed}: "
        "is `interlock server` running?"
    )
    assert err.count("\n") == 1


async def test_cli_rules_apply_refuses_broken_modules_and_sends_nothing(served: Served) -> None:
    module = served.tmp / "broken.py"
    module.write_text(
        "from interlock.rules import Rule, on\n"
        "bad = Rule(name='bad', when=on('job.failed', at_least=2, within='soon'))\n"
    )
    status, _, err = await served.cli("rules", "apply", str(module))
    assert status == 1
    assert "problem(s) in the rules; nothing applied" in err
    assert "soon" in err
    assert (await served.rig.services.store.rules.list()) == []


async def test_cli_keys_bootstrap_then_keys_are_required(served: Served) -> None:
    status, token, err = await served.cli("keys", "create", "ops", "--scope", "admin")
    assert status == 0, err
    token = token.strip()
    assert token.startswith("ilk_")
    assert "cannot be shown again" in err
    assert token not in err

    status, _, err = await served.cli("rules", "list")
    assert status == 1
    assert "an API key is required" in err
    assert "(HTTP 401)" in err

    status, out, err = await served.cli("rules", "list", key=token)
    assert status == 0, err
    status, out, err = await served.cli("rules", "list", "--api-key", token)
    assert status == 0, err

    status, out, _ = await served.cli("keys", "list")
    assert status == 0
    assert "ops" in out
    assert token not in out

    status, reader, _ = await served.cli("keys", "create", "viewer", "--scope", "read")
    status, _, err = await served.cli("rules", "pause", "x", key=reader.strip())
    assert status == 1
    assert "needs write" in err
    assert "(HTTP 403)" in err


async def test_cli_channels_add_from_stdin_and_list_redacted(served: Served) -> None:
    url = "slack://TokenA/TokenB/TokenC/#alerts"
    status, out, err = await served.cli("channels", "add", "ops", "-", stdin=url + "\n")
    assert status == 0, err
    assert out == "channel ops -> slack://***\n"
    status, out, _ = await served.cli("channels", "list")
    assert status == 0
    assert "ops" in out
    assert "slack://***" in out
    assert "TokenA" not in out
    assert await served.rig.services.store.channels.get_secret("ops") == url

    status, _, err = await served.cli("channels", "add", "bad", "-", stdin="")
    assert status == 1
    assert "no URL on standard input" in err
    status, _, err = await served.cli("channels", "add", "bad", "nonsense-secret")
    assert status == 1
    assert "not an Apprise URL" in err
    assert "nonsense-secret" not in err

    status, out, _ = await served.cli("channels", "remove", "ops")
    assert (status, out) == (0, "channel ops deleted\n")


async def test_cli_firings_list_and_show(served: Served) -> None:
    status, out, _ = await served.cli("firings", "list")
    assert (status, out) == (0, "(none)\n")
    fired = Firing(
        id=uuid.uuid4(),
        rule="job-failed",
        key="job-7",
        status="fired",
        at=datetime(2026, 3, 1, 9, tzinfo=UTC),
        summary="job-7 failed twice",
    )
    await served.rig.services.store.store_batch([fired])
    status, out, _ = await served.cli("firings", "list", "--rule", "job-failed")
    assert status == 0
    assert "job-7 failed twice" in out
    assert str(fired.id) in out
    status, out, err = await served.cli("firings", "list", "--rule", "other")
    assert (status, out, err) == (0, "(none)\n", "")
    status, out, _ = await served.cli("firings", "show", str(fired.id))
    assert status == 0
    assert "job-7" in out
    status, _, err = await served.cli("firings", "show", str(uuid.uuid4()))
    assert status == 1
    assert "(HTTP 404)" in err


async def test_every_command_has_help(served: Served) -> None:
    for command in (
        ["rules", "apply"],
        ["rules", "list"],
        ["rules", "pause"],
        ["channels", "add"],
        ["channels", "list"],
        ["keys", "create"],
        ["firings", "list"],
    ):
        status, out, _ = await served.cli(*command, "--help")
        assert status == 0
        assert "usage: interlock" in out


async def test_the_openapi_document_types_bodies_and_declares_security(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        document = (await client.get("/schema/openapi.json")).json()
    paths, components = document["paths"], document["components"]
    # POST /api/rules: the rule model itself, in its three accepted forms.
    for path in ("/api/rules", "/api/rules/check"):
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        ruleset, listed, one = body["oneOf"]
        assert one == {"$ref": "#/components/schemas/rules.Rule"}
        assert listed["items"] == one
        assert ruleset["properties"]["rules"]["items"] == one
    rule = components["schemas"]["rules.Rule"]
    assert {"name", "when"} <= set(rule["required"])
    assert "then" in rule["properties"]
    assert "rules.Webhook" in components["schemas"]
    # POST /api/events: an event (native or CloudEvents), or a batch of them.
    events = paths["/api/events"]["post"]["requestBody"]["content"]["application/json"]
    assert events["schema"]["oneOf"][0]["anyOf"][0]["required"] == ["event", "resource"]
    # The API key, declared and offered to every operation (or none, where none is needed).
    assert components["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert document["security"] == [{"apiKey": []}, {}]
    # /metrics: text, not JSON.
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]


async def test_metrics_are_prometheus_text_with_process_and_python_collectors(
    served: Served,
) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        response = await client.get("/metrics")
    assert response.headers.get_list("content-type") == ["text/plain; version=0.0.4; charset=utf-8"]
    text = response.text
    assert "_created" not in text
    for series in ("process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"):
        assert f"\n{series}" in text, series
    assert "python_gc_collections_total" in text
    assert "# HELP interlock_runs_total Runs entering a state, by that state" in text


async def test_ids_may_be_given_by_a_unique_prefix(served: Served) -> None:
    def firing(id_: str, key: str) -> Firing:
        return Firing(
            id=uuid.UUID(id_),
            rule="job-failed",
            key=key,
            status="fired",
            at=datetime(2026, 3, 1, 9, tzinfo=UTC),
            summary=f"{key} failed",
        )

    await served.rig.services.store.store_batch(
        [
            firing("1f2e3d4c-5b6a-4978-8a9b-000000000001", "job-1"),
            firing("1f2e3d4c-5b6a-4978-8a9b-000000000002", "job-2"),
            firing("abcdef01-5b6a-4978-8a9b-000000000003", "job-3"),
        ]
    )
    status, out, err = await served.cli("firings", "show", "ABCDEF")  # case and length: any
    assert (status, err) == (0, "")
    assert "job-3" in out
    status, out, _ = await served.cli("firings", "show", "1f2e3d4c-5b6a-4978-8a9b-0000000000")
    assert "job-1" not in out
    status, _, err = await served.cli("firings", "show", "1f2e")
    assert status == 1
    assert err == (
        "interlock: error: the firing id prefix '1f2e' is ambiguous: it starts "
        "1f2e3d4c-5b6a-4978-8a9b-000000000001, 1f2e3d4c-5b6a-4978-8a9b-000000000002; give "
        "more of the id (HTTP 400)\n"
    )
    for text, why in [
        ("9999", "no firing id starts so"),
        ("abc", "give at least 4 hexadecimal digits of it"),
        ("not-an-id", "an id is 32 hexadecimal digits, dashes optional"),
    ]:
        status, _, err = await served.cli("firings", "show", text)
        assert (status, err) == (
            1,
            f"interlock: error: no firing with the id {text!r} ({why}) (HTTP 404)\n",
        )


async def test_credentials_written_in_rules_are_warned_of_at_apply_and_check(
    served: Served,
) -> None:
    module = served.tmp / "rules" / "inline.py"
    module.parent.mkdir()
    module.write_text(
        "from interlock.rules import Rule, notify, on\n"
        "r = Rule(name='inline', when=on('job.failed'), "
        "then=[notify('slack://T0KEN-A/T0KEN-B/T0KEN-C')])\n"
    )
    status, out, err = await served.cli("rules", "apply", str(module.parent))
    assert status == 0, err
    assert (
        "  warning  then[0].url: an Apprise URL of slack:// (its path holds the service's "
        "tokens) is written in the rule: it is stored in plain text (add it as a channel, "
        'stored encrypted (interlock channels add NAME URL), and write notify("NAME"))'
    ) in out.splitlines()
    assert "1 warning(s)" in err
    status, out, _ = await served.cli("rules", "check", "-q", str(module.parent))
    assert status == 0
    assert out.splitlines()[-1] == "1 rule(s) checked: ok, 1 warning(s)"
