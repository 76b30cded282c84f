"""``db.listen``: PostgreSQL ``LISTEN``/``NOTIFY`` → events, pushed as they arrive.

The adapter holds one psycopg connection that listens (``LISTEN``) on a channel. Each
notification becomes one event:

- a JSON object with ``event`` (and ``resource_id``, optional ``payload``, ``labels``,
  ``id``, ``occurred``) is that event: ``pg_notify('interlock', json_build_object(
  'event', 'warehouse.load.finished', 'resource_id', 'warehouse.sales'))``;
- anything else (plain text, or JSON without ``event``) is the configured ``event``, about
  the configured ``resource_id``, with the JSON object (or ``{"message": text}``) as
  payload; without a configured ``event`` it is rejected (logged and counted, not sent).

Two ways to run it, sharing :meth:`ListenAdapter.receive`:

- :class:`ListenRunner` pushes: it publishes each batch as soon as it arrives and, when
  the connection drops, reconnects after a backoff (100 ms doubling to 30 s), following
  the policy of long-running loops (:mod:`interlock.sdk.retry`): only a refusal ends it.
- ``interlock adapter run`` drives :meth:`ListenAdapter.poll` like any polling adapter:
  a poll returns as soon as a notification arrives (or after ``wait``), with whatever
  else has arrived too, and asks to be called again at once only after a full batch
  (``more``). Between polls the server queues notifications for the session, so the
  runner's ``interval`` adds latency, not loss; ``--once`` takes one batch.

``NOTIFY`` is not durable: what is sent while no session listens (the connection is
down, the adapter restarting) is lost, and cannot be replayed from a checkpoint. Where
every change must arrive, write it to an outbox table and watch it with ``db.rows``.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from interlock.adapters.base import (
    AdapterConfigError,
    PollingAdapter,
    PollResult,
    SourceRefused,
    SourceUnavailable,
)
from interlock.adapters.db._source import classify_error
from interlock.adapters.section_options import Options
from interlock.sdk.compat import fromisoformat
from interlock.sdk.errors import SpoolError
from interlock.sdk.event import Event, utc_now
from interlock.sdk.retry import Backoff, Retry
from interlock.sdk.sync import SyncPublisher

if TYPE_CHECKING:
    import psycopg

__all__ = ["ListenAdapter", "ListenRunner", "ListenStats", "notification_event"]

logger = logging.getLogger(__name__)

_SETTLE = 0.01
"""Seconds a batch waits for more after its first notification (a commit's NOTIFYs)."""


def notification_event(
    channel: str,
    text: str,
    *,
    event: str | None,
    resource_id: str,
    labels: dict[str, str],
    now: datetime,
) -> Event:
    """The event for one notification (see the module's docstring for the mapping).

    Raises:
        ValueError: the notification does not make a valid event (an
            :class:`~interlock.sdk.EventValidationError` says which field).
    """
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict) and "event" in document:
        name = document["event"]
        resource_id = document.get("resource_id", resource_id)
        payload = document.get("payload", {})
        labels = {**labels, **document.get("labels", {})}
        event_id = uuid.UUID(str(document["id"])) if "id" in document else uuid.uuid4()
        occurred = fromisoformat(document["occurred"]) if "occurred" in document else now
    elif event is None:
        raise ValueError(
            f"a notification on {channel!r} without an 'event' field, and the adapter sets "
            "no default `event`"
        )
    else:
        name, event_id, occurred = event, uuid.uuid4(), now
        payload = document if isinstance(document, dict) else {"message": text}
    return Event(
        id=event_id,
        occurred=occurred,
        event=name,
        resource={**labels, "id": resource_id},
        payload=payload,
    )


class ListenAdapter(PollingAdapter):
    """Listens on one PostgreSQL channel.

    Args:
        name: The adapter's name.
        url: A ``postgresql://`` URL (any driver is accepted; psycopg 3 listens).
        channel: The channel, exactly as ``pg_notify`` names it.
        event: The event of notifications that do not name one.
        resource_id: Their resource id; ``<database>.<channel>`` by default.
        wait: The longest a poll waits for a first notification.
        max_batch: Notifications taken by one poll at most.
        connect_timeout: The longest a connection attempt may take.
        clock: The time stamped on events that do not carry ``occurred``.
    """

    kind = "db.listen"

    def __init__(
        self,
        name: str,
        *,
        url: str,
        channel: str,
        event: str | None = None,
        resource_id: str | None = None,
        wait: timedelta = timedelta(seconds=1),
        max_batch: int = 1000,
        connect_timeout: timedelta = timedelta(seconds=10),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(name)
        try:
            parsed = sa.make_url(url)
        except sa_exc.ArgumentError as exc:
            raise AdapterConfigError(name, "url", f"is not a database URL ({exc})") from exc
        if parsed.get_backend_name() != "postgresql":
            raise AdapterConfigError(
                name, "url", "LISTEN/NOTIFY is PostgreSQL's: use a postgresql:// URL"
            )
        try:
            import psycopg  # noqa: F401, PLC0415 - the [db] extra's driver, needed here only
        except ImportError as exc:
            raise AdapterConfigError(
                name, "url", "db.listen needs psycopg 3: pip install 'interlock-adapters[db]'"
            ) from exc
        self.display = parsed.render_as_string(hide_password=True)
        self.database = parsed.database or "postgres"
        self.channel = channel
        self.event = event
        self.resource_id = resource_id or f"{self.database}.{channel}"
        self.wait = wait
        self.max_batch = max_batch
        self.clock = clock
        self.connections = 0
        """Connections made so far: more than one means it reconnected."""
        self.rejected = 0
        """Notifications that made no valid event."""
        self._labels = {"database": self.database, "channel": channel}
        self._connect_args: dict[str, Any] = {
            "application_name": f"interlock-{name}"[:63],
            "connect_timeout": max(2, round(connect_timeout.total_seconds())),
            # Notice a peer that vanished without closing (a network partition) in ~1 min.
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            **parsed.translate_connect_args(username="user", database="dbname"),
            **{key: value for key, value in parsed.query.items() if isinstance(value, str)},
        }
        self._connection: psycopg.Connection[Any] | None = None
        self._batch = 0

    @classmethod
    def from_options(cls, name: str, options: dict[str, Any]) -> ListenAdapter:
        """Build from ``url``, ``channel`` and the optional settings."""
        read = Options(cls.kind, name, options)
        adapter = cls(
            name,
            url=read.string("url", example="postgresql+psycopg://watcher@db:5432/warehouse"),
            channel=read.string("channel", example="interlock"),
            event=read.optional_string("event"),
            resource_id=read.optional_string("resource_id"),
            wait=read.duration("wait", "1s"),
            max_batch=read.integer("max_batch", 1000),
            connect_timeout=read.duration("connect_timeout", "10s"),
        )
        read.finish()
        return adapter

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg  # noqa: PLC0415 - optional dependency, checked in __init__
        from psycopg import sql  # noqa: PLC0415

        if self._connection is not None and not self._connection.closed:
            return self._connection
        try:
            connection = psycopg.connect(autocommit=True, **self._connect_args)
        except psycopg.Error as exc:
            raise self._error(exc) from exc
        try:
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        except psycopg.Error as exc:
            connection.close()
            raise self._error(exc) from exc
        self._connection = connection
        self.connections += 1
        if self.connections > 1:
            logger.info("adapter %s: listening on %r again", self.name, self.channel)
        return connection

    def _error(self, exc: Exception) -> SourceUnavailable | SourceRefused:
        error = classify_error(self.name, self.display, exc)
        no_sqlstate = getattr(exc, "sqlstate", None) is None
        if (
            isinstance(error, SourceRefused)
            and no_sqlstate
            and "fatal:" not in error.reason.lower()
        ):
            # psycopg reports a lost or failed connection without a SQLSTATE; only a
            # server's FATAL answer (credentials, database, role) is a refusal.
            return SourceUnavailable(self.name, error.reason)
        return error

    def receive(self, timeout: float) -> list[Event]:
        """Wait up to ``timeout`` seconds for notifications; return their events.

        Raises:
            SourceUnavailable: the connection is down (or just dropped); call again to
                reconnect, after a backoff.
            SourceRefused: the server refused the connection or the ``LISTEN``.
        """
        import psycopg  # noqa: PLC0415

        connection = self._connect()
        try:
            # Generators drained to the end: closing one early would drop the rest of a
            # packet's notifications.
            notes = list(connection.notifies(timeout=timeout, stop_after=1))
            while notes and len(notes) < self.max_batch:
                arrived = list(connection.notifies(timeout=_SETTLE))
                if not arrived:
                    break
                notes.extend(arrived)
        except psycopg.Error as exc:
            connection.close()
            self._connection = None
            raise SourceUnavailable(
                self.name,
                f"{self.display}: connection lost ({' '.join(str(exc).split())}); "
                "notifications sent until it is back are lost",
            ) from exc
        self._batch = len(notes)
        now = self.clock()
        events: list[Event] = []
        for note in notes:
            try:
                events.append(
                    notification_event(
                        note.channel,
                        note.payload,
                        event=self.event,
                        resource_id=self.resource_id,
                        labels=self._labels,
                        now=now,
                    )
                )
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                self.rejected += 1
                logger.warning(
                    "adapter %s: notification %r rejected: %s", self.name, note.payload[:200], exc
                )
        return events

    def poll(self, checkpoint: dict[str, Any] | None) -> PollResult:
        """The notifications that arrive within ``wait`` (more at once after a full batch)."""
        events = self.receive(self.wait.total_seconds())
        received = int((checkpoint or {}).get("received", 0)) + len(events)
        more = self._batch >= self.max_batch
        return PollResult(events=events, checkpoint={"received": received}, more=more)

    def close(self) -> None:
        """Close the connection (the server forgets the ``LISTEN``)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class ListenStats(msgspec.Struct, kw_only=True):
    """Counters of one :class:`ListenRunner`."""

    events: int = 0
    spooled: int = 0
    failures: int = 0
    """Failures, each followed by a backoff: the connection found down, the spool
    refusing events, or an unexpected error (logged with its traceback)."""


class ListenRunner:
    """Publishes a :class:`ListenAdapter`'s notifications as they arrive; reconnects.

    No checkpoint is kept: a notification cannot be replayed, so there is nothing to
    resume from. Events are published as soon as :meth:`ListenAdapter.receive` returns
    them (stored by JetStream or spooled by the SDK); a batch that could not be published
    is published again before anything more is received.
    """

    def __init__(
        self,
        adapter: ListenAdapter,
        publisher: SyncPublisher,
        *,
        min_backoff: timedelta = timedelta(milliseconds=100),
        max_backoff: timedelta = timedelta(seconds=30),
    ) -> None:
        self.adapter = adapter
        self.publisher = publisher
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.stats = ListenStats()

    def run(self, stop: threading.Event) -> None:
        """Listen and publish until ``stop`` is set; raise :class:`SourceRefused` on refusal."""
        first = self.min_backoff.total_seconds()
        retry = Retry(
            logger,
            f"adapter {self.adapter.name}",
            expected=(SourceUnavailable, SpoolError),
            backoff=Backoff(first, max(first, self.max_backoff.total_seconds()), jitter=False),
        )
        events: list[Event] = []
        while not stop.is_set():
            try:
                if not events:
                    events = self.adapter.receive(self.adapter.wait.total_seconds())
                if events:
                    result = self.publisher.publish_many(events)
                    self.stats.events += len(events)
                    self.stats.spooled += result.spooled
                    events = []
            except SourceRefused:
                raise
            except Exception as exc:  # noqa: BLE001 - the loop's boundary: Retry logs it
                self.stats.failures += 1
                stop.wait(retry.failed(exc))
                continue
            retry.succeeded()
