"""``prefect.events``: a Prefect server's event stream → Interlock events, pushed.

The adapter holds one websocket to Prefect's ``/api/events/out``: it authenticates
(the first message: ``{"type": "auth", "token": ...}``), sends a filter (optional event
names or name prefixes; ``occurred.since`` = where to resume), and then receives every
matching event as it is recorded. Each becomes one Interlock event
(:mod:`interlock.adapters.prefect._mapping`).

It runs under :class:`~interlock.adapters.runner.AdapterRunner` like ``db.listen``: a
:meth:`~PrefectEventsAdapter.poll` returns as soon as events arrive (or after
``wait``) with whatever else has arrived, and asks to be called again at once after a
full batch. Between polls the socket buffers what arrives, so the runner's
``interval`` adds latency, not loss (keep it short: ``interval = "1s"``).

Resuming: the checkpoint (:mod:`interlock.adapters.prefect._state`) holds the time to
resume from and the ids seen near it; a new connection asks Prefect for events since
``resume - lookback`` and drops the ids already published, so neither a reconnect nor a
restart duplicates or skips an event. Prefect replays at most
``PREFECT_SERVER_EVENTS_MAXIMUM_WEBSOCKET_BACKFILL`` (15 min by default): a bridge
stopped for longer misses what happened before that; it logs a warning saying so.

Errors: a refused handshake (HTTP 401/403) or credentials refused in the ``auth``
message (close code 1008) → :class:`~interlock.adapters.base.SourceRefused`; a server
that is down, a dropped connection, a timeout → :class:`SourceUnavailable` (the runner
backs off and the next poll reconnects).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from interlock.adapters.base import (
    AdapterConfigError,
    PollingAdapter,
    PollResult,
    SourceRefused,
    SourceUnavailable,
)
from interlock.adapters.prefect._connection import PrefectConnection
from interlock.adapters.prefect._mapping import to_interlock
from interlock.adapters.prefect._state import StreamState
from interlock.adapters.section_options import Options
from interlock.sdk.event import Event, utc_now

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection  # type: ignore[import-not-found,unused-ignore]

__all__ = ["PrefectEventsAdapter"]

logger = logging.getLogger(__name__)

_FAR = timedelta(days=3650)
"""``occurred.until`` of the filter: Prefect defaults it to *now*, which would end the stream."""
_POLICY_VIOLATION = 1008
_PROTOCOL_ERROR = 1002
_PREFECT_MAX_BACKFILL = timedelta(minutes=15)


class PrefectEventsAdapter(PollingAdapter):
    """Streams one Prefect server's events.

    Args:
        name: The adapter's name.
        connection: The Prefect API URL and credentials.
        names: Only these Prefect event names (exactly), e.g. ``prefect.flow-run.Failed``.
        prefixes: Only names starting with one of these, e.g. ``prefect.flow-run.``.
        backfill: On the very first start (no checkpoint), also publish what happened this
            long before (Prefect replays at most 15 min); ``0s`` by default.
        lookback: How far before the resume point a reconnect asks Prefect to replay, for
            events recorded out of ``occurred`` order; replayed ids already published are
            dropped. 1 min by default (as Prefect's own client).
        wait: The longest a poll waits for a first event.
        max_batch: Events taken by one poll at most.
        open_timeout: The longest the handshake (connect, authenticate) may take.
        clock: The time (injected in tests).
    """

    kind = "prefect.events"

    def __init__(
        self,
        name: str,
        *,
        connection: PrefectConnection,
        names: tuple[str, ...] = (),
        prefixes: tuple[str, ...] = (),
        backfill: timedelta = timedelta(0),
        lookback: timedelta = timedelta(minutes=1),
        wait: timedelta = timedelta(seconds=1),
        max_batch: int = 500,
        open_timeout: timedelta = timedelta(seconds=10),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(name)
        try:
            import websockets  # type: ignore[import-not-found,unused-ignore]  # noqa: F401, PLC0415 - the [prefect] extra, needed here only
        except ImportError as exc:
            raise AdapterConfigError(
                name,
                "kind",
                "prefect.events needs websockets: pip install 'interlock-adapters[prefect]'",
            ) from exc
        self.connection = connection
        self.names = names
        self.prefixes = prefixes
        self.backfill = backfill
        self.lookback = lookback
        self.wait = wait
        self.max_batch = max_batch
        self.open_timeout = open_timeout
        self.clock = clock
        self.connections = 0
        """Connections opened so far: more than one means it reconnected."""
        self.rejected = 0
        """Prefect events that made no valid Interlock event (logged, not published)."""
        self._stack = contextlib.ExitStack()
        self._socket: ClientConnection | None = None
        self._state = StreamState()
        self._handed: dict[str, Any] | None = None

    @classmethod
    def from_options(cls, name: str, options: dict[str, Any]) -> PrefectEventsAdapter:
        """Build from ``api_url`` (or ``INTERLOCK_PREFECT_API_URL``) and the optional settings.

        The credentials come from ``INTERLOCK_PREFECT_API_KEY`` or
        ``INTERLOCK_PREFECT_AUTH_STRING``, or from the options ``api_key_env`` /
        ``auth_string_env`` naming another variable: a secret is never written in the file.
        In the service, a section naming a ``prefect`` connection gets ``api_url``,
        ``api_key`` and ``auth_string`` from it (:mod:`interlock.service.adapter_connections`).
        """
        read = Options(cls.kind, name, options)
        api_url = read.optional_string("api_url")
        key_env = read.optional_string("api_key_env")
        auth_env = read.optional_string("auth_string_env")
        api_key = read.optional_string("api_key")
        auth_string = read.optional_string("auth_string")
        try:
            connection = PrefectConnection.from_env(
                os.environ,
                api_url=api_url,
                api_key=api_key or (os.environ.get(key_env) if key_env else None),
                auth_string=auth_string or (os.environ.get(auth_env) if auth_env else None),
            )
        except ValueError as exc:
            raise read.error("api_url", str(exc)) from exc
        adapter = cls(
            name,
            connection=connection,
            names=read.strings("names"),
            prefixes=read.strings("prefixes"),
            backfill=read.duration("backfill", "0s", allow_zero=True),
            lookback=read.duration("lookback", "1m", allow_zero=True),
            wait=read.duration("wait", "1s"),
            max_batch=read.integer("max_batch", 500),
            open_timeout=read.duration("open_timeout", "10s"),
        )
        read.finish()
        return adapter

    def _filter(self, since: datetime) -> dict[str, Any]:
        event_filter: dict[str, Any] = {
            "occurred": {"since": since.isoformat(), "until": (self.clock() + _FAR).isoformat()}
        }
        names: dict[str, list[str]] = {}
        if self.names:
            names["name"] = list(self.names)
        if self.prefixes:
            names["prefix"] = list(self.prefixes)
        if names:
            event_filter["event"] = names
        return event_filter

    def _refused_or_down(self, what: str, exc: Exception) -> SourceRefused | SourceUnavailable:
        from websockets.exceptions import ConnectionClosed, InvalidStatus  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

        origin = self.connection.origin
        if isinstance(exc, InvalidStatus):
            status = exc.response.status_code
            if status in (401, 403):
                return SourceRefused(
                    self.name,
                    f"{origin} refused the events websocket (HTTP {status}): check the API "
                    "key or auth string, and that api_url is the Prefect API URL (ending in /api)",
                )
            if status == 404:
                return SourceRefused(
                    self.name,
                    f"{origin} has no events websocket at {self.connection.events_url}: is "
                    "api_url the Prefect API URL (ending in /api)?",
                )
            return SourceUnavailable(self.name, f"{origin}: {what} failed (HTTP {status})")
        if isinstance(exc, ConnectionClosed):
            frame = exc.rcvd
            code = frame.code if frame is not None else None
            reason = frame.reason if frame is not None else ""
            if code == _POLICY_VIOLATION:
                return SourceRefused(
                    self.name,
                    f"{origin} refused the credentials ({reason or 'policy violation'}): "
                    "check the API key or auth string",
                )
            if code == _PROTOCOL_ERROR:
                return SourceRefused(self.name, f"{origin} refused the stream: {reason}")
            return SourceUnavailable(
                self.name, f"{origin}: {what}: connection closed (code {code} {reason})".strip()
            )
        return SourceUnavailable(self.name, f"{origin}: {what} failed ({type(exc).__name__})")

    def _connect(self) -> ClientConnection:
        from websockets.exceptions import WebSocketException  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
        from websockets.sync.client import connect  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
        from websockets.typing import Subprotocol  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

        if self._socket is not None:
            return self._socket
        now = self.clock()
        since = self._state.since(self.lookback)
        if since is None:
            since = now - self.backfill
        elif now - since > _PREFECT_MAX_BACKFILL:
            logger.warning(
                "adapter %s: resuming from %s, but Prefect replays at most 15 min by default "
                "(PREFECT_SERVER_EVENTS_MAXIMUM_WEBSOCKET_BACKFILL): events before %s may be "
                "missing",
                self.name,
                since.isoformat(),
                (now - _PREFECT_MAX_BACKFILL).isoformat(),
            )
        timeout = self.open_timeout.total_seconds()
        stack = contextlib.ExitStack()
        try:
            socket = stack.enter_context(
                connect(
                    self.connection.events_url,
                    subprotocols=[Subprotocol("prefect")],
                    open_timeout=timeout,
                    close_timeout=2,
                    max_queue=4096,
                )
            )
            socket.send(json.dumps({"type": "auth", "token": self.connection.token}))
            answer = json.loads(socket.recv(timeout=timeout))
            if answer.get("type") != "auth_success":
                reason = str(answer.get("reason", answer.get("type")))[:200]
                raise SourceRefused(
                    self.name, f"{self.connection.origin} refused the credentials ({reason})"
                )
            socket.send(json.dumps({"type": "filter", "filter": self._filter(since)}))
        except (OSError, TimeoutError, WebSocketException, ValueError) as exc:
            stack.close()
            raise self._refused_or_down("connecting", exc) from exc
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        self._socket = socket
        self._state.connected(now)
        self.connections += 1
        logger.info(
            "adapter %s: streaming events of %s since %s",
            self.name,
            self.connection.origin,
            since.isoformat(),
        )
        return socket

    def _disconnect(self) -> None:
        self._socket = None
        stack, self._stack = self._stack, contextlib.ExitStack()
        with contextlib.suppress(Exception):  # already broken: nothing to tell the server
            stack.close()

    def receive(self, timeout: float) -> list[dict[str, Any]]:
        """Wait up to ``timeout`` seconds for Prefect events; return them as Prefect sent them.

        Events that arrived before the connection dropped are returned (the next call
        reconnects and resumes).

        Raises:
            SourceUnavailable: the server is down or the connection dropped with nothing
                received; call again (after a backoff) to reconnect and resume.
            SourceRefused: the server refused the credentials or the filter.
        """
        from websockets.exceptions import WebSocketException  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

        socket = self._connect()
        messages: list[str | bytes] = []
        try:
            try:
                messages.append(socket.recv(timeout=timeout))
                while len(messages) < self.max_batch:
                    messages.append(socket.recv(timeout=0.01))
            except TimeoutError:
                pass
        except (OSError, WebSocketException) as exc:
            self._disconnect()
            if not messages:
                raise self._refused_or_down("streaming", exc) from exc
            # Keep what arrived before the drop; the next poll reconnects and resumes.
            logger.warning(
                "adapter %s: %s", self.name, self._refused_or_down("streaming", exc).reason
            )
        received: list[dict[str, Any]] = []
        for message in messages:
            try:
                document = json.loads(message)
            except ValueError:
                self.rejected += 1
                logger.warning("adapter %s: a message that is not JSON was ignored", self.name)
                continue
            if isinstance(document, dict) and document.get("type") == "event":
                received.append(document.get("event") or {})
        return received

    def poll(self, checkpoint: dict[str, Any] | None) -> PollResult:
        """The events that arrive within ``wait`` (more at once after a full batch)."""
        if checkpoint != self._handed:
            # A checkpoint other than the last one handed out: that result was not
            # published, or this is the first poll. Resume from the checkpoint.
            try:
                self._state = StreamState.from_checkpoint(checkpoint)
            except ValueError as exc:
                raise AdapterConfigError(self.name, "checkpoint", str(exc)) from exc
            self._disconnect()
        received = self.receive(self.wait.total_seconds())
        events: list[Event] = []
        for item in received:
            try:
                event = to_interlock(item)
            except (ValueError, TypeError) as exc:
                self.rejected += 1
                logger.warning("adapter %s: a Prefect event was rejected: %s", self.name, exc)
                continue
            key = str(event.id)
            if self._state.is_new(key):
                self._state.add(key, event.occurred)
                events.append(event)
        self._state.trim(self.lookback)
        self._handed = self._state.to_checkpoint()
        return PollResult(
            events=events, checkpoint=self._handed, more=len(received) >= self.max_batch
        )

    def close(self) -> None:
        """Close the websocket."""
        self._disconnect()
