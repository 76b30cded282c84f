r"""``interlock connections add | list | show | test | rotate | remove | history | reencrypt``.

Fields are given as ``FIELD=VALUE`` (``header.X-Api-Key=VALUE`` for an http connection's
headers). A secret on the command line stays in the shell's history and shows in the
process list: give ``FIELD=-`` to read its value from standard input (one line per such
field, in order), or ``FIELD=env:VARIABLE`` to take it from an environment variable::

    echo "$AIRFLOW_PASSWORD" | interlock connections add prod-airflow airflow \\
        url=https://airflow.example.com username=svc-interlock password=-
    interlock connections rotate prod-airflow password=env:NEW_AIRFLOW_PASSWORD
    interlock connections test prod-airflow

The API never shows a secret again: ``show`` and ``list`` name the secrets a connection
holds, not their values.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from interlock.sdk.errors import InterlockError
from interlock.service.cli.client import ApiClient, add_api_arguments, print_output

__all__ = ["BadField", "parse_fields", "register"]

_COLUMNS = ["name", "kind", "settings", "secrets", "version", "updated_at"]
_HISTORY = ["at", "name", "kind", "change", "fields", "version"]
_HEADER = "header."


class BadField(InterlockError, ValueError):
    """A ``FIELD=VALUE`` argument is malformed, or its value cannot be read."""

    def __init__(self, argument: str, reason: str) -> None:
        self.argument = argument
        super().__init__(f"{argument}: {reason}")


def parse_fields(
    arguments: Sequence[str], *, stdin: Any = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``FIELD=VALUE`` arguments as a fields object (see the module's docstring).

    Raises:
        BadField: no ``=``, an empty field name, ``-`` with nothing on standard input,
            or ``env:VARIABLE`` with the variable unset (named without its value).
    """
    env = os.environ if environ is None else environ
    fields: dict[str, Any] = {}
    for argument in arguments:
        field, sep, value = argument.partition("=")
        if not sep or not field:
            raise BadField(argument.split("=")[0] or argument, "give FIELD=VALUE")
        if value == "-":
            value = (stdin or sys.stdin).readline().rstrip("\r\n")
            if not value:
                raise BadField(field, "no value on standard input")
        elif value.startswith("env:"):
            variable = value.removeprefix("env:")
            value = env.get(variable, "")
            if not value:
                raise BadField(field, f"the environment variable {variable} is not set")
        if field.startswith(_HEADER):
            fields.setdefault("headers", {})[field.removeprefix(_HEADER)] = value
        else:
            fields[field] = value
    return fields


def register(groups: Any) -> None:
    """Add the ``connections`` command group."""
    parser = groups.add_parser("connections", help="manage named connections and their secrets")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    add = commands.add_parser(
        "add",
        help="create a connection or replace it",
        description="Create the connection NAME of KIND (airflow, prefect, s3, database, "
        "http, apprise), or replace all its fields. FIELD=- reads a value from standard "
        "input; FIELD=env:VARIABLE from the environment; header.NAME=VALUE sets an http "
        "header.",
    )
    add.add_argument("name", metavar="NAME")
    add.add_argument("kind", metavar="KIND")
    add.add_argument("fields", metavar="FIELD=VALUE", nargs="*")
    add_api_arguments(add)
    add.set_defaults(handler=_add)

    listing = commands.add_parser("list", help="list connections (no secret values)")
    listing.add_argument("--kind", help="only connections of this kind")
    add_api_arguments(listing)
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="show a connection (no secret values)")
    show.add_argument("name", metavar="NAME")
    add_api_arguments(show)
    show.set_defaults(handler=_show)

    test = commands.add_parser(
        "test",
        help="check that the system answers and accepts the credentials",
        description="Check the connection NAME: exit status 0 when it answers and accepts "
        "its credentials, 1 with one line saying which failed.",
    )
    test.add_argument("name", metavar="NAME")
    add_api_arguments(test)
    test.set_defaults(handler=_test)

    rotate = commands.add_parser(
        "rotate",
        help="replace some secrets of a connection",
        description="Replace the secrets given (the rest are kept); every executor, "
        "adapter and webhook uses them from the next call.",
    )
    rotate.add_argument("name", metavar="NAME")
    rotate.add_argument("fields", metavar="SECRET=VALUE", nargs="+")
    add_api_arguments(rotate)
    rotate.set_defaults(handler=_rotate)

    remove = commands.add_parser("remove", help="remove a connection")
    remove.add_argument("name", metavar="NAME")
    add_api_arguments(remove, json_flag=False)
    remove.set_defaults(handler=_remove)

    history = commands.add_parser("history", help="changes of connections, newest first")
    history.add_argument("name", metavar="NAME", nargs="?", help="only this one's")
    history.add_argument("--limit", type=int, default=100)
    add_api_arguments(history)
    history.set_defaults(handler=_history)

    reencrypt = commands.add_parser(
        "reencrypt",
        help="re-encrypt every secret with the service's newest key",
        description="After rotating the service's secret_key (the old one kept in "
        "previous_secret_keys): rewrite every stored secret with the new key.",
    )
    add_api_arguments(reencrypt)
    reencrypt.set_defaults(handler=_reencrypt)


def _show_line(connection: Mapping[str, Any]) -> str:
    settings = " ".join(f"{k}={v}" for k, v in sorted(connection["settings"].items()))
    secrets = ", ".join(connection["secrets"]) or "none"
    return (
        f"connection {connection['name']} ({connection['kind']}, version "
        f"{connection['version']}): {settings}; secrets: {secrets}"
    )


def _add(args: argparse.Namespace) -> int:
    fields = parse_fields(args.fields)
    with ApiClient.from_args(args) as api:
        connection = api.post(
            "/api/connections", {"name": args.name, "kind": args.kind, "fields": fields}
        )
    if args.json:
        print_output(args, connection, columns=_COLUMNS)
    else:
        print(_show_line(connection))
    return 0


def _list(args: argparse.Namespace) -> int:
    params = {"kind": args.kind} if args.kind else None
    with ApiClient.from_args(args) as api:
        print_output(args, api.get("/api/connections", params), columns=_COLUMNS)
    return 0


def _show(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        connection = api.get(f"/api/connections/{args.name}")
    if args.json:
        print_output(args, connection, columns=_COLUMNS)
    else:
        print(_show_line(connection))
    return 0


def _test(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        result = api.post(f"/api/connections/{args.name}/test")
    if args.json:
        print_output(args, result, columns=["name", "outcome", "detail"])
    elif result["ok"]:
        print(f"{result['name']}: ok: {result['detail']}")
    else:
        print(f"{result['name']}: {result['outcome']}: {result['detail']}", file=sys.stderr)
    return 0 if result["ok"] else 1


def _rotate(args: argparse.Namespace) -> int:
    secrets = parse_fields(args.fields)
    with ApiClient.from_args(args) as api:
        connection = api.post(f"/api/connections/{args.name}/rotate", {"secrets": secrets})
    if args.json:
        print_output(args, connection, columns=_COLUMNS)
    else:
        print(
            f"connection {connection['name']} rotated ({', '.join(sorted(secrets))}), "
            f"version {connection['version']}"
        )
    return 0


def _remove(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        api.delete(f"/api/connections/{args.name}")
    print(f"connection {args.name} removed")
    return 0


def _history(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.name:
        params["name"] = args.name
    with ApiClient.from_args(args) as api:
        print_output(args, api.get("/api/connections/history", params), columns=_HISTORY)
    return 0


def _reencrypt(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        result = api.post("/api/connections/reencrypt")
    if args.json:
        print_output(args, result, columns=["reencrypted"])
    else:
        print(f"{result['reencrypted']} secrets re-encrypted with the newest key")
    return 0
