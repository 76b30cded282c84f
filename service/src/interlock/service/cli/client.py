"""What the API commands share: a small synchronous HTTP client, common flags, output.

::

    def register(subparsers):
        parser = subparsers.add_parser("list", help="...")
        add_api_arguments(parser)          # --api-url, --api-key, --json
        parser.set_defaults(handler=_list)

    def _list(args):
        with ApiClient.from_args(args) as api:
            rules = api.get("/api/rules")
        print_output(args, rules, columns=["name", "paused", "version"])
        return 0

The base URL comes from ``--api-url``, then ``INTERLOCK_API_URL``, then the API of a
server running on the data directory (``INTERLOCK_DATA_DIR``, default ``.interlock``; see
:mod:`interlock.sdk.local_server`), then ``http://127.0.0.1:8400``; the key from
``--api-key``, then ``INTERLOCK_API_KEY`` (sent as ``Authorization: Bearer <key>``;
without one, only a local API with no keys answers).
Errors become one :class:`ApiError` line: the ``detail`` of the server's problem document
(RFC 9457; its ``title`` when it has none), the rules' ``problems`` or the fields'
``extra`` after it, and the HTTP status; or, when nothing answers, how to start the
server.

httpx is imported by the first :class:`ApiClient`, not with this module: what calls no
API (``interlock --help``, which imports every command group's module; ``interlock keys``)
does not pay the tenth of a second its import takes (it loads click and rich for its own
command line).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TextIO

from interlock.sdk.errors import InterlockError
from interlock.sdk.local_server import find_local_server

if TYPE_CHECKING:
    import httpx

__all__ = [
    "API_KEY_VARIABLE",
    "API_URL_VARIABLE",
    "DEFAULT_API_URL",
    "ApiClient",
    "ApiError",
    "ApiUnreachable",
    "add_api_arguments",
    "print_output",
    "print_table",
]

DEFAULT_API_URL: Final = "http://127.0.0.1:8400"
API_URL_VARIABLE: Final = "INTERLOCK_API_URL"
API_KEY_VARIABLE: Final = "INTERLOCK_API_KEY"
_TIMEOUT = 30.0


class ApiError(InterlockError):
    """The API answered with an error.

    Attributes:
        status_code: The HTTP status.
        detail: What the server said was wrong.
    """

    def __init__(self, status_code: int, detail: str) -> None:
        self.status_code = status_code
        self.detail = detail
        super().__init__(f"{detail} (HTTP {status_code})")


class ApiUnreachable(InterlockError, ConnectionError):
    """Nothing answered at the API's URL.

    Attributes:
        url: The base URL tried.
        reason: What the connection attempt said.
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"cannot reach the Interlock API at {url}: is `interlock server` running? "
            f"(set --api-url or {API_URL_VARIABLE} if it runs elsewhere; {reason})"
        )


def add_api_arguments(parser: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    """Add ``--api-url``, ``--api-key`` and (unless told not to) ``--json``."""
    parser.add_argument(
        "--api-url",
        default=None,
        help=f"the API's base URL (default: ${API_URL_VARIABLE}, else the API of a server "
        f"running on ./.interlock, else {DEFAULT_API_URL})",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"API key (default: ${API_KEY_VARIABLE}; prefer the variable, which stays "
        "out of shell history)",
    )
    if json_flag:
        parser.add_argument(
            "--json", action="store_true", help="print the API's JSON instead of a table"
        )


class ApiClient:
    """A synchronous client of the Interlock API, for the command line.

    Args:
        base_url: The API's base URL.
        api_key: The API key, or ``None`` (a local API without keys).
        transport: An httpx transport (tests may pass an ``httpx.ASGITransport``-like one).
        timeout: Seconds to wait for an answer.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_API_URL,
        api_key: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = _TIMEOUT,
    ) -> None:
        import httpx  # noqa: PLC0415 - see the module docstring

        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, transport=transport, timeout=timeout
        )

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None
    ) -> ApiClient:
        """A client configured by ``--api-url``/``--api-key`` or the environment."""
        env = os.environ if environ is None else environ
        url = getattr(args, "api_url", None) or env.get(API_URL_VARIABLE) or _local_api(env)
        key = getattr(args, "api_key", None) or env.get(API_KEY_VARIABLE) or None
        return cls(url, key)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """``GET path``; the decoded JSON answer."""
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        """``POST path`` with ``body`` as JSON; the decoded JSON answer."""
        return self.request("POST", path, json_body=body, params=params)

    def delete(self, path: str) -> Any:
        """``DELETE path``; the decoded JSON answer (``None`` when empty)."""
        return self.request("DELETE", path)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send a request; return the decoded JSON answer (``None`` for an empty one).

        Raises:
            ApiUnreachable: nothing answered (refused, timed out, unresolvable).
            ApiError: the API answered with a 4xx or 5xx status.
        """
        import httpx  # noqa: PLC0415 - imported by __init__ already

        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(
                method,
                path,
                json=json_body,
                params=clean or None,
            )
        except httpx.TransportError as exc:
            raise ApiUnreachable(self.base_url, str(exc) or type(exc).__name__) from None
        if response.is_error:
            raise ApiError(response.status_code, _detail(response))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                response.status_code, f"{method} {path} answered with something not JSON"
            ) from None


def _local_api(environ: Mapping[str, str]) -> str:
    local = find_local_server(environ)
    return local.api_url if local is not None and local.api_url else DEFAULT_API_URL


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:300] if text else response.reason_phrase
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title")
        extra = body.get("extra")
        text = str(detail) if detail else response.reason_phrase
        problems = body.get("problems")
        if isinstance(problems, list) and problems:
            text += ":\n  " + "\n  ".join(_problem(problem) for problem in problems)
        elif extra:
            text += f": {json.dumps(extra)}"
        return text
    return response.reason_phrase


def _problem(problem: Any) -> str:
    if not isinstance(problem, dict):
        return str(problem)
    where = f"{problem['path']}: " if problem.get("path") else ""
    hint = f" ({problem['hint']})" if problem.get("hint") else ""
    return f"rule {problem.get('rule', '?')!r}: {where}{problem.get('message', '')}{hint}"


def print_output(
    args: argparse.Namespace,
    data: Any,
    *,
    columns: Sequence[str],
    out: TextIO | None = None,
) -> None:
    """Print ``data`` as JSON (with ``--json``) or as a table of ``columns``."""
    stream = out or sys.stdout
    if getattr(args, "json", False):
        stream.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    rows = data if isinstance(data, list) else [data]
    print_table(rows, columns, out=stream)


def print_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, out: TextIO | None = None
) -> None:
    """Print rows as aligned columns, headed by the column names in capitals."""
    stream = out or sys.stdout
    if not rows:
        stream.write("(none)\n")
        return
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)
    ]
    header = "  ".join(column.upper().ljust(widths[i]) for i, column in enumerate(columns))
    stream.write(header.rstrip() + "\n")
    for line in cells:
        stream.write("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        stream.write("\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(_cell(item) for item in value) or "-"
    return str(value)
