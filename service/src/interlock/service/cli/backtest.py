"""``interlock rules backtest RULES --since 7d``: what rules would have fired, and why.

It prints what the rules would have fired and how that differs from what their live
versions fired.

Registered into the ``rules`` group through the entry-point group
``interlock.rules_commands``. The backtest runs **here, in the command's process**: it
loads the rule files, reads the recorded events straight from NATS (``--nats-url``,
else ``INTERLOCK_NATS_URL``, else the embedded NATS of the server running on the data
directory, else ``nats://127.0.0.1:4222``) and replays them through its own engine, so
a week of events costs the running service nothing; it asks the service's API only for
the live rules' versions and firings (``--api-url``/``--api-key``, as the other API
commands; ``--no-compare`` skips that). See ``docs/backtest.md``.

Exit status: 0 done; 1 an error (one line on stderr: a bad ``--since``, a rule file
that does not load, NATS or the API unreachable). With ``--detailed-exitcode``
(Terraform's convention): 0 nothing would change, 2 some live rule would fire
differently, 1 an error.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from interlock.sdk import NatsOptions, PublisherConfig
from interlock.sdk.local_server import find_local_server
from interlock.service.cli.client import ApiClient, ApiUnreachable, add_api_arguments

if TYPE_CHECKING:
    from interlock.service.backtest import BacktestReport

__all__ = ["register"]

_NATS_VARIABLE = "INTERLOCK_NATS_URL"


def register(commands: Any) -> None:
    """Add ``backtest`` to the ``rules`` group."""
    parser = commands.add_parser(
        "backtest",
        help="replay recorded events through rules; compare with their live firings",
        description="Replay the events recorded in JetStream over a past span through "
        "the rules under PATH (in event time, as the live service would have seen them), "
        "print what the rules would have fired per rule, key and window, and, for rules "
        "the service runs, the difference from their live firings by firing id. No "
        "action runs; every action is rendered, so template errors show.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    parser.add_argument(
        "--since",
        required=True,
        help="start of the span: a duration back from now (7d, 36h) or an ISO 8601 time "
        "with an offset",
    )
    parser.add_argument("--until", help="end of the span (default: now)")
    parser.add_argument(
        "--warmup",
        default="1d",
        help="events replayed before --since to build the rules' state; their firings "
        "are dropped (default: 1d)",
    )
    parser.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when nothing would change, 2 when some live rule would fire "
        "differently, 1 on an error (Terraform's convention)",
    )
    parser.add_argument(
        "--no-compare",
        action="store_true",
        help="do not ask the service for the live firings (no API needed)",
    )
    parser.add_argument(
        "--nats-url",
        help=f"NATS URL(s), comma-separated (default: ${_NATS_VARIABLE}, else the embedded "
        "NATS of a server running on ./.interlock or $INTERLOCK_DATA_DIR, else "
        "nats://127.0.0.1:4222)",
    )
    add_api_arguments(parser)
    # Retried connections and quarantined rules are in the error or the report: the
    # warnings logged on the way would break the one-line error (-v shows them).
    parser.set_defaults(handler=_backtest, default_log_level="ERROR")


def nats_options(args: argparse.Namespace) -> NatsOptions:
    """Where NATS is: ``--nats-url``, the environment, the local server, the default."""
    environ = dict(os.environ)
    if args.nats_url:
        environ[_NATS_VARIABLE] = args.nats_url
    elif not environ.get(_NATS_VARIABLE):
        local = find_local_server(environ)
        if local is not None and local.nats_url:
            environ[_NATS_VARIABLE] = local.nats_url
    options = PublisherConfig.from_env(environ).nats
    return msgspec.structs.replace(options, name="interlock-backtest")


async def _backtest(args: argparse.Namespace) -> int:
    # Imported here: every `interlock rules ...` command imports this module to build its
    # parser, and the backtest's engine and readers take a second or more to import.
    from interlock.rules.loader import load_paths  # noqa: PLC0415
    from interlock.service.backtest import (  # noqa: PLC0415
        ApiLiveRecord,
        BacktestError,
        TerminalProgress,
        parse_horizon,
        run_backtest,
    )

    horizon = parse_horizon(args.since, args.until, args.warmup, now=datetime.now(UTC))
    loaded = load_paths(args.paths)
    if len(loaded.problems) == 1:
        raise BacktestError(f"the rules do not load: {loaded.problems[0]}")
    if loaded.problems:
        listed = "\n  ".join(str(problem) for problem in loaded.problems)
        raise BacktestError(f"the rules do not load ({len(loaded.problems)} problems):\n  {listed}")
    if not loaded.rules:
        raise BacktestError(f"no rules found in {', '.join(map(str, args.paths))}")
    nats = nats_options(args)
    api = None if args.no_compare else ApiClient.from_args(args)
    progress = TerminalProgress(sys.stderr) if sys.stderr.isatty() else None
    try:
        live = ApiLiveRecord(api) if api is not None else None
        try:
            report = await run_backtest(loaded.rules, horizon, nats, live, on_progress=progress)
        except ApiUnreachable as exc:
            raise BacktestError(f"{exc}; to backtest without live firings: --no-compare") from None
    finally:
        if progress is not None:
            progress.close()
        if api is not None:
            api.close()
    _print(report, as_json=args.json)
    if args.detailed_exitcode and report.changed:
        return 2
    return 0


def _print(report: BacktestReport, *, as_json: bool) -> None:
    from interlock.service.backtest import write_text  # noqa: PLC0415 - see _backtest

    if as_json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    else:
        write_text(report, sys.stdout)
