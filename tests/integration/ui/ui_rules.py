"""What the browser tests' server runs: rules, deployments, settings, a flaky webhook receiver.

- ``ui-load``: ``ui.load.finished`` within 6 s after ``ui.load.started``, per resource (a
  short real window each test opens itself);
- ``ui-sla``: ``ui.table.updated`` for ``ui.sla`` at least once every 4 s (a heartbeat);
  ``ui-downstream`` waits on the same event and starts ``ui-report``: what the firing
  page of a miss lists downstream;
- ``ui-webhook``: each ``ui.hook.requested`` posts to the receiver's ``/hook``, which
  fails the first two times (503) and then succeeds;
- ``ui-approval``: each ``ui.approval.requested`` asks for an approval (Apprise to the
  receiver), then runs ``ui-job``;
- deployment ``ui-slow`` prints a line every half second, six times (a log to follow).
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

SERVER_ENV = {
    "INTERLOCK_ENGINE__CONSUMER_MAX_WAIT": "50ms",
    "INTERLOCK_ACTIONS__BACKOFF_INITIAL": "100ms",
    "INTERLOCK_ACTIONS__BACKOFF_MAX": "300ms",
}

_PYTHON = json.dumps(sys.executable)
_SLOW = (
    "import time\\nfor i in range(6):\\n    print(f'step {i}', flush=True)\\n    time.sleep(0.5)"
)
DEPLOYMENTS = f"""
[deployments.ui-job]
queue = "default"
target = {{ type = "process", command = [{_PYTHON}, "-c", "print('ui job ran')"] }}

[deployments.ui-slow]
queue = "default"
target = {{ type = "process", command = [{_PYTHON}, "-u", "-c", "{_SLOW}"] }}

[deployments.ui-report]
queue = "default"
target = {{ type = "process", command = [{_PYTHON}, "-c", "print('report')"] }}
"""


def rules_module(receiver: str) -> str:
    """The rule module, its webhooks and Apprise URLs pointing at ``receiver``."""
    apprise = receiver.replace("http://", "json://")
    return f'''
from interlock.rules import (
    Rule, absent, after, approve, heartbeat, on, resource, run_deployment, webhook,
)

load = Rule(
    name="ui-load",
    when=absent(
        "ui.load.finished", by=after("ui.load.started", within="6s"), for_each="resource.id"
    ),
    tags=["ui"],
    owner="data-team",
    description="a load finishes within 6 seconds of starting",
)

sla = Rule(
    name="ui-sla",
    when=absent("ui.table.updated", by=heartbeat("4s"), for_each="resource.id", keys=["ui.sla"]),
    tags=["ui", "sales"],
    description="ui.sla is refreshed at least every 4 seconds",
)

downstream = Rule(
    name="ui-downstream",
    when=on("ui.table.updated", where=resource.id == "ui.sla"),
    then=[run_deployment("ui-report")],
)

hook = Rule(
    name="ui-webhook",
    when=on("ui.hook.requested"),
    then=[webhook("{receiver}/hook", body={{"n": "{{{{ event.payload.n }}}}"}})],
)

gated = Rule(
    name="ui-approval",
    when=on("ui.approval.requested"),
    then=[approve("{apprise}/approval", title="Run ui-job?"), run_deployment("ui-job")],
)
'''


class FlakyReceiver:
    """An HTTP endpoint answering ``/hook`` with 503 twice, then 200; everything else 200."""

    failures = 2

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._lock:
                    receiver.requests.append((self.path, body))
                    hooks = sum(1 for path, _ in receiver.requests if path == "/hook")
                status = 503 if self.path == "/hook" and hooks <= receiver.failures else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def paths(self) -> list[str]:
        """The paths of the requests so far."""
        with self._lock:
            return [path for path, _ in self.requests]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
