"""``interlock events emit`` and ``interlock events tail`` as a shell script would run them."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from interlock.service.embedded_nats import EmbeddedNatsServer


def _installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def interlock(
    *args: str, env: dict[str, str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlock.sdk.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "INTERLOCK_SPOOL_DIR": str(tmp_path / "spool"),
        "INTERLOCK_SOURCE": "cron",
    }


def test_emit_then_tail_shows_the_event(nats_url: str, env: dict[str, str]) -> None:
    init = interlock("events", "init-streams", "--nats-url", nats_url, env=env)
    assert init.returncode == 0, init.stderr
    assert "INTERLOCK_EVENTS: 0 messages" in init.stdout

    emitted = interlock(
        "events",
        "emit",
        "db.table.updated",
        "--resource-id",
        "warehouse.sales",
        "--label",
        "schema=dw",
        "--related",
        "producer=airflow.load_sales",
        "--payload",
        '{"rows": 1200}',
        "--id",
        "5f0b8a0e-8a59-4d3c-9a47-0c1d2e3f4a5b",
        "--nats-url",
        nats_url,
        env=env,
    )
    assert emitted.returncode == 0, emitted.stderr
    assert emitted.stderr == ""

    tailed = interlock(
        "events", "tail", "db.table.*", "--all", "--count", "1", "--nats-url", nats_url, env=env
    )
    assert tailed.returncode == 0, tailed.stderr
    [line] = tailed.stdout.splitlines()
    event = json.loads(line)
    assert event == json.loads(emitted.stdout)
    assert event["id"] == "5f0b8a0e-8a59-4d3c-9a47-0c1d2e3f4a5b"
    assert event["resource"] == {"schema": "dw", "id": "warehouse.sales"}
    assert event["related"] == [{"id": "airflow.load_sales", "role": "producer"}]
    assert event["payload"] == {"rows": 1200}
    assert event["source"] == "cron"


def test_tail_filters_by_pattern(nats_url: str, env: dict[str, str]) -> None:
    assert interlock("events", "init-streams", "--nats-url", nats_url, env=env).returncode == 0
    for name in ("s3.object.created", "db.table.updated", "s3.object.deleted"):
        result = interlock(
            "events", "emit", name, "--resource-id", "r", "--nats-url", nats_url, env=env
        )
        assert result.returncode == 0, result.stderr
    tailed = interlock(
        "events", "tail", "s3.>", "--all", "--idle-exit", "1", "--nats-url", nats_url, env=env
    )
    names = [json.loads(line)["event"] for line in tailed.stdout.splitlines()]
    assert names == ["s3.object.created", "s3.object.deleted"]


def test_emit_while_nats_is_down_spools_and_the_next_emit_sends_it(
    nats_server: EmbeddedNatsServer, env: dict[str, str]
) -> None:
    url = nats_server.url
    assert interlock("events", "init-streams", "--nats-url", url, env=env).returncode == 0
    nats_server.stop()
    down = interlock(
        "events",
        "emit",
        "job.finished",
        "--resource-id",
        "nightly",
        "--nats-url",
        url,
        "--timeout",
        "0.5",
        env=env,
    )
    assert down.returncode == 0
    assert "spooled" in down.stderr
    nats_server.start()
    up = interlock(
        "events", "emit", "job.started", "--resource-id", "nightly", "--nats-url", url, env=env
    )
    assert up.returncode == 0, up.stderr
    tailed = interlock("events", "tail", "--all", "--count", "2", "--nats-url", url, env=env)
    assert [json.loads(line)["event"] for line in tailed.stdout.splitlines()] == [
        "job.finished",
        "job.started",
    ]


def test_emit_of_an_event_the_stream_refuses_fails_and_says_why(
    nats_url: str, env: dict[str, str], tmp_path: Path
) -> None:
    assert interlock("events", "init-streams", "--nats-url", nats_url, env=env).returncode == 0
    subprocess.run(  # an operator's limit on the stream, below NATS' max_payload
        [*NATS_CLI_PYTHON, nats_url], check=True, timeout=30
    )
    payload = json.dumps({"blob": "x" * 1000})
    refused = interlock(
        "events", "emit", "a.b", "--resource-id", "x", "--payload", payload, "--nats-url", nats_url,
        env=env,
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "Traceback" not in refused.stderr
    last = refused.stderr.strip().splitlines()[-1]  # after the library's log line
    assert last.startswith("interlock: JetStream refused the event for good (message size")
    assert (tmp_path / "spool" / "refused.jsonl").exists()


NATS_CLI_PYTHON = [
    sys.executable,
    "-c",
    "import asyncio, sys, nats\n"
    "async def main():\n"
    "    nc = await nats.connect(sys.argv[1]); js = nc.jetstream()\n"
    "    config = (await js.stream_info('INTERLOCK_EVENTS')).config\n"
    "    config.max_msg_size = 600\n"
    "    await js.update_stream(config); await nc.close()\n"
    "asyncio.run(main())\n",
]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["events", "emit", "a..b", "--resource-id", "x"], "event name 'a..b' has an empty token"),
        (["events", "emit", "a.b", "--resource-id", "x", "--payload", "[1]"], "payload must be"),
        (["events", "emit", "a.b", "--resource-id", "x", "--label", "oops"], "is not KEY=VALUE"),
    ],
)
def test_errors_are_one_line(args: list[str], message: str, env: dict[str, str]) -> None:
    result = interlock(*args, "--nats-url", "nats://127.0.0.1:1", env=env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("interlock: error: ")
    assert message in result.stderr


def test_tail_with_nats_down_is_a_one_line_error(env: dict[str, str]) -> None:
    result = interlock("events", "tail", "--nats-url", "nats://127.0.0.1:1", env=env)
    assert result.returncode == 1
    assert "interlock: error: NATS at nats://127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_names_every_interlock_package_installed(flag: str, env: dict[str, str]) -> None:
    result = interlock(flag, env=env)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith("interlock ")
    assert f"interlock-sdk {metadata.version('interlock-sdk')}" in line
    for distribution in ("interlock-rules", "interlock-adapters", "interlock-service"):
        if _installed(distribution):
            assert f"{distribution} {metadata.version(distribution)}" in line
    assert f"Python {platform.python_version()}" in line


@pytest.mark.skipif(
    _installed("interlock-service"), reason="the SDK alone (make test-pythons): no service"
)
@pytest.mark.parametrize(
    ("group", "distribution"), [("runs", "interlock-service"), ("server", "interlock-service")]
)
def test_a_group_of_a_package_not_installed_names_the_package(
    group: str, distribution: str, env: dict[str, str]
) -> None:
    result = interlock(group, "list", env=env)
    assert result.returncode == 2
    assert result.stderr == (
        f"interlock: error: 'interlock {group}' comes with {distribution}, which is not "
        f"installed here: pip install {distribution}\n"
    )


def test_the_group_table_names_every_installed_group() -> None:
    from interlock.sdk.cli import GROUPS  # noqa: PLC0415
    from interlock.sdk.compat import entry_points  # noqa: PLC0415

    for point in entry_points("interlock.commands"):
        dist = getattr(point, "dist", None)  # 3.10+
        if dist is not None:
            assert GROUPS.get(point.name) == dist.name, point.name
