"""``airflow.rest``: poll Airflow's REST API for DAG runs and task instances that changed.

For installations where no plugin can be installed. Each poll lists the DAG runs and
then the task instances whose ``updated_at`` is at or after the previous poll's start
(by Airflow's clock, the ``Date`` of its first answer) minus ``lookback``, ordered by id,
page by page (``limit``/``offset``), and emits the same events, with the same ids, as
the listener plugin (see :mod:`~interlock.adapters.airflow._events`)::

    [adapters.airflow-prod]
    kind = "airflow.rest"
    interval = "30s"
    url = "http://airflow:8080"
    username = "interlock"
    password_env = "AIRFLOW_PASSWORD"

A change (a start for ``running``, an end otherwise) older than the listing's
``updated_at_gte`` was already in an earlier listing's window and is not published again;
on the first poll, that means the changes of the last ``lookback`` only.

The checkpoint holds that start time, the ids of the events published within the
``lookback`` (so a re-poll publishes nothing new), and, while a listing spans several
polls (``max_items_per_poll``), its offsets.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import msgspec

from interlock.adapters.airflow._client import (
    AirflowClient,
    AirflowError,
    AirflowUnavailable,
    Connection,
)
from interlock.adapters.airflow._events import (
    DagRunChange,
    TaskInstanceChange,
    dag_run_event,
    state_of,
    task_instance_event,
)
from interlock.adapters.airflow._options import OptionReader, read_connection
from interlock.adapters.base import (
    AdapterConfigError,
    PollingAdapter,
    PollResult,
    SourceRefused,
    SourceUnavailable,
)
from interlock.sdk.compat import fromisoformat
from interlock.sdk.event import Event, utc_now

__all__ = ["AirflowRestAdapter"]

logger = logging.getLogger(__name__)

VERSION = 1


class Cursor(msgspec.Struct, kw_only=True):
    """A listing in progress (it may span several polls)."""

    base: datetime
    """The ``updated_at_gte`` of this listing."""
    started: datetime | None = None
    """Airflow's time when the listing began: the next listing's base, less lookback."""
    runs_offset: int = 0
    runs_done: bool = False
    tasks_offset: int = 0


class Checkpoint(msgspec.Struct, kw_only=True):
    """What ``airflow.rest`` keeps between polls."""

    version: int = VERSION
    url: str = ""
    since: datetime | None = None
    """When the last complete listing began (Airflow's clock)."""
    cursor: Cursor | None = None
    seen: dict[str, datetime] = msgspec.field(default_factory=dict)
    """Event ids published, with the start of the listing that found them."""


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _server_time(response: httpx.Response) -> datetime:
    header = response.headers.get("date")
    if header:
        try:
            return parsedate_to_datetime(header).astimezone(timezone.utc)
        except (TypeError, ValueError):
            pass
    return utc_now().replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def run_changes(item: dict[str, Any]) -> list[DagRunChange]:
    """The state changes a DAG run of the API has gone through that have an event."""
    state = state_of(item.get("state"))
    start = _parse_time(item.get("start_date"))
    if state is None or (state == "running" and start is None):
        return []
    common: dict[str, Any] = {
        "dag_id": str(item["dag_id"]),
        "run_id": str(item.get("dag_run_id") or item.get("run_id")),
        "run_type": item.get("run_type"),
        "logical_date": _parse_time(item.get("logical_date") or item.get("execution_date")),
        "start_date": start,
    }
    changes: list[DagRunChange] = []
    if start is not None:
        changes.append(DagRunChange(state="running", airflow_state="running", **common))
    if state != "running":
        end = _parse_time(item.get("end_date"))
        airflow_state = str(item["state"])
        changes.append(
            DagRunChange(state=state, airflow_state=airflow_state, end_date=end, **common)
        )
    return changes


def task_changes(item: dict[str, Any]) -> list[TaskInstanceChange]:
    """The state changes of the current try of a task instance of the API with an event."""
    state = state_of(item.get("state"))
    start = _parse_time(item.get("start_date"))
    if state is None or start is None:
        return []
    map_index = item.get("map_index")
    common: dict[str, Any] = {
        "dag_id": str(item["dag_id"]),
        "run_id": str(item.get("dag_run_id") or item.get("run_id")),
        "task_id": str(item["task_id"]),
        "try_number": int(item.get("try_number") or 0),
        "map_index": -1 if map_index is None else int(map_index),
        "logical_date": _parse_time(item.get("logical_date") or item.get("execution_date")),
        "start_date": start,
    }
    changes = [TaskInstanceChange(state="running", airflow_state="running", **common)]
    if state != "running":
        changes.append(
            TaskInstanceChange(
                state=state,
                airflow_state=str(item["state"]),
                end_date=_parse_time(item.get("end_date")),
                **common,
            )
        )
    return changes


class AirflowRestAdapter(PollingAdapter):
    """Publishes ``airflow.dag_run.*`` and ``airflow.task_instance.*`` by polling the API."""

    kind = "airflow.rest"

    def __init__(
        self,
        name: str,
        client: AirflowClient,
        *,
        instance: str | None = None,
        dag_ids: list[str] | None = None,
        task_instances: bool = True,
        lookback: timedelta = timedelta(minutes=5),
        page_size: int = 100,
        max_items_per_poll: int = 1000,
    ) -> None:
        super().__init__(name)
        self.client = client
        self.instance = instance
        self.dag_ids = set(dag_ids or ())
        self.task_instances = task_instances
        self.lookback = lookback
        self.page_size = page_size
        self.max_items_per_poll = max_items_per_poll
        self._budget = max_items_per_poll

    @classmethod
    def from_options(cls, name: str, options: dict[str, Any]) -> AirflowRestAdapter:
        """Build from ``[adapters.NAME]``; see ``docs/adapters/airflow.md`` for every option."""
        reader = OptionReader(name, options)
        connection: Connection = read_connection(reader)
        instance = reader.string("instance")
        dag_ids = reader.string_list("dag_ids")
        task_instances = reader.boolean("task_instances", default=True)
        lookback = reader.duration("lookback", timedelta(minutes=5))
        page_size = reader.integer("page_size", 100, minimum=1, maximum=1000)
        max_items = reader.integer("max_items_per_poll", 1000, minimum=1)
        reader.finish(cls.kind)
        return cls(
            name,
            AirflowClient(connection),
            instance=instance,
            dag_ids=dag_ids,
            task_instances=task_instances,
            lookback=lookback,
            page_size=page_size,
            max_items_per_poll=max_items,
        )

    # -- checkpoint --------------------------------------------------------------------

    def _load(self, checkpoint: dict[str, Any] | None) -> Checkpoint:
        if checkpoint is None:
            return Checkpoint(url=self.client.base)
        try:
            state = msgspec.convert(checkpoint, Checkpoint)
        except msgspec.ValidationError as exc:
            raise self._stale(f"is malformed ({exc})") from exc
        if state.version != VERSION or state.url != self.client.base:
            raise self._stale(f"was written for {state.url} (version {state.version})")
        return state

    def _stale(self, reason: str) -> AdapterConfigError:
        return AdapterConfigError(
            self.name,
            "checkpoint",
            f"{reason}, not for {self.client.base}; delete this adapter's checkpoint file "
            "to start over",
        )

    # -- polling -----------------------------------------------------------------------

    def poll(self, checkpoint: dict[str, Any] | None) -> PollResult:
        """List what changed since the last listing began, less ``lookback``."""
        state = self._load(checkpoint)
        if state.cursor is None:
            state.cursor = Cursor(base=(state.since or utc_now()) - self.lookback)
        cursor = state.cursor
        events: list[Event] = []
        self._budget = self.max_items_per_poll
        params = {"updated_at_gte": _iso(cursor.base), "order_by": "id"}
        if self.client.connection.api_version == "v1":
            params.pop("order_by")  # Airflow 2 orders by id by default
        try:
            more = False
            if not cursor.runs_done:
                more = self._list(cursor, "runs", params, events)
                cursor.runs_done = not more
            if self.task_instances and not more:
                more = self._list(cursor, "tasks", params, events)
        except AirflowUnavailable as exc:
            raise SourceUnavailable(self.name, str(exc)) from exc
        except AirflowError as exc:
            raise SourceRefused(self.name, str(exc)) from exc
        found = cursor.started or utc_now()
        # A change before this listing's base was in an earlier listing's window: already
        # published (a run updated again later, e.g. by a note, is listed again).
        fresh = [
            event
            for event in events
            if event.occurred >= cursor.base and str(event.id) not in state.seen
        ]
        for event in fresh:
            state.seen[str(event.id)] = found
        if not more:
            state.since = found
            state.cursor = None
            horizon = found - self.lookback
            state.seen = {key: when for key, when in state.seen.items() if when >= horizon}
        fresh.sort(key=lambda event: event.occurred)
        return PollResult(events=fresh, checkpoint=msgspec.to_builtins(state), more=more)

    def _list(
        self, cursor: Cursor, which: str, params: dict[str, str], events: list[Event]
    ) -> bool:
        """List DAG runs or task instances from the cursor; return whether the budget ran out."""
        api = self.client.api
        if which == "runs":
            path, key, offset = f"{api}/dags/~/dagRuns", "dag_runs", cursor.runs_offset
        else:
            path, key = f"{api}/dags/~/dagRuns/~/taskInstances", "task_instances"
            offset = cursor.tasks_offset
        for start, items, response in self.client.pages(
            path, key, params, page_size=self.page_size, offset=offset
        ):
            cursor.started = cursor.started or _server_time(response)
            for item in items:
                if not self._wanted(item):
                    continue
                if which == "runs":
                    events.extend(
                        dag_run_event(change, instance=self.instance)
                        for change in run_changes(item)
                    )
                else:
                    events.extend(
                        task_instance_event(change, instance=self.instance)
                        for change in task_changes(item)
                    )
            if which == "runs":
                cursor.runs_offset = start + len(items)
            else:
                cursor.tasks_offset = start + len(items)
            self._budget -= len(items)
            if self._budget <= 0 and len(items) == self.page_size:
                return True
        return False

    def _wanted(self, item: dict[str, Any]) -> bool:
        return not self.dag_ids or item.get("dag_id") in self.dag_ids

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()
