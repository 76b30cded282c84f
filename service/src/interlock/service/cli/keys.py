"""``interlock keys create | list | revoke``: API keys, straight in the database.

These commands do not go through the API: they open the database the settings name
(``config/interlock.toml``, ``INTERLOCK_*``; see :mod:`interlock.service.settings`), so
the first admin key can be made before the API requires one. Whoever can read the
settings and the database is trusted here. ``create`` prints the token once, alone on
standard output (notes go to standard error), so ``TOKEN=$(interlock keys create ...)``
captures it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, get_args

import msgspec

from interlock.service.cli.client import print_output
from interlock.service.cli.config import add_config_argument, settings_from
from interlock.service.store import Scope, Store

__all__ = ["register"]

_COLUMNS = ["name", "prefix", "scopes", "created_at", "revoked_at"]


def register(groups: Any) -> None:
    """Add the ``keys`` command group."""
    parser = groups.add_parser("keys", help="manage API keys (in the database directly)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    create = commands.add_parser(
        "create",
        help="create an API key and print its token once",
        description="Create an API key in the service's database and print its token "
        "(shown this once only). Scopes: read (look at everything), publish (send events "
        "and nothing else: for producers and adapters), write (read, publish, and change "
        "rules, queues, runs and approvals), admin (everything, also keys, channels and "
        "deployments, which run commands on workers), worker (only running runs: "
        "`interlock worker --api-url`; it reads the secrets of the connections its "
        "targets name, and nothing else).",
    )
    create.add_argument(
        "name",
        metavar="NAME",
        help="who or what the key is for (letters, digits, '.', '_', '-'; e.g. airflow-prod)",
    )
    create.add_argument(
        "--scope",
        choices=get_args(Scope),
        default="read",
        help="what it may do (default read; producers need only publish)",
    )
    _add_config(create)
    create.set_defaults(handler=_create)

    listing = commands.add_parser(
        "list", help="list API keys (never tokens)", description="List API keys."
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    _add_config(listing)
    listing.set_defaults(handler=_list)

    revoke = commands.add_parser(
        "revoke",
        help="revoke an API key",
        description="Revoke the key with this prefix (see `interlock keys list`).",
    )
    revoke.add_argument("prefix", metavar="PREFIX")
    _add_config(revoke)
    revoke.set_defaults(handler=_revoke)


def _add_config(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--database-url", help="the database (default: from the settings)")


def _store(args: argparse.Namespace) -> Store:
    values: dict[str, Any] = {}
    if args.database_url:
        values["database_url"] = args.database_url
    # API keys need no secret key: open the database without one, so that this command
    # never creates the embedded secret key file as a side effect.
    return Store(settings_from(args, **values).database_url)


async def _create(args: argparse.Namespace) -> int:
    async with _store(args) as store:
        await store.migrate()
        created = await store.api_keys.create(args.name, [args.scope])
    key = created.key
    print(
        f"created API key {key.name!r} (prefix {key.prefix}, scope {args.scope}); its token "
        "follows and cannot be shown again:",
        file=sys.stderr,
    )
    print(created.token)
    return 0


async def _list(args: argparse.Namespace) -> int:
    async with _store(args) as store:
        await store.migrate()
        keys = await store.api_keys.list()
    print_output(args, msgspec.to_builtins(keys), columns=_COLUMNS)
    return 0


async def _revoke(args: argparse.Namespace) -> int:
    async with _store(args) as store:
        await store.migrate()
        key = await store.api_keys.revoke(args.prefix)
    print(f"revoked API key {key.name!r} ({key.prefix})")
    return 0
