"""The six Airflow events, built the same way by the listener plugin and the REST bridge.

``airflow.dag_run.{running,succeeded,failed}`` are about the resource ``airflow.<dag_id>``
(label ``dag_id``); ``airflow.task_instance.{running,succeeded,failed}`` about
``airflow.<dag_id>.<task_id>`` (labels ``dag_id``, ``task_id``; related: the DAG, role
``dag``). With an ``instance`` name configured, every resource also has the label
``instance``. Ids are UUID5s of what identifies the state change — instance, dag id, run
id, and the run's start date (dag runs) or task id, map index and try number (task
instances), and the new state — so the plugin and the bridge seeing the same change
publish the same id, and JetStream keeps one.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Literal

import msgspec

from interlock.adapters.base import deterministic_id
from interlock.sdk.event import Event, utc_now

__all__ = [
    "DagRunChange",
    "State",
    "TaskInstanceChange",
    "dag_run_event",
    "dag_run_id",
    "error_summary",
    "state_of",
    "task_instance_event",
    "task_instance_id",
]

State = Literal["running", "succeeded", "failed"]

_STATES: dict[str, State] = {
    "running": "running",
    "success": "succeeded",
    "failed": "failed",
    "up_for_retry": "failed",
}
"""Airflow's states (dag run and task instance) that have an event; others have none."""

ERROR_LIMIT = 1000
"""Characters of an error summary at most."""


def state_of(airflow_state: object) -> State | None:
    """Our state for Airflow's (``success`` → ``succeeded``), ``None`` for one without event."""
    value = getattr(airflow_state, "value", airflow_state)
    return _STATES.get(str(value)) if value is not None else None


def error_summary(error: object) -> str | None:
    """One line for people: ``ValueError: bad row 17``, cut at 1,000 characters."""
    if error is None:
        return None
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    else:
        text = str(error)
    text = " ".join(text.split())
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 1] + "…"


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return (
        moment.replace(tzinfo=timezone.utc)
        if moment.tzinfo is None
        else moment.astimezone(timezone.utc)
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


class DagRunChange(msgspec.Struct, frozen=True, kw_only=True):
    """A dag run reached a state, as read from a listener hook or the REST API."""

    dag_id: str
    run_id: str
    state: State
    airflow_state: str
    run_type: str | None = None
    logical_date: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    error: str | None = None


class TaskInstanceChange(msgspec.Struct, frozen=True, kw_only=True):
    """A task instance (one try of one task of one run) reached a state."""

    dag_id: str
    run_id: str
    task_id: str
    state: State
    airflow_state: str
    try_number: int
    map_index: int = -1
    logical_date: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    error: str | None = None


def _labels(instance: str | None, **labels: str) -> dict[str, str]:
    return {**labels, "instance": instance} if instance else labels


def _timing(
    state: State, start: datetime | None, end: datetime | None
) -> tuple[datetime, dict[str, Any]]:
    """When the change happened, and the timing fields of the payload."""
    start, end = _utc(start), _utc(end)
    if state == "running":
        return start or utc_now(), {"start_date": _iso(start)}
    fields: dict[str, Any] = {"start_date": _iso(start), "end_date": _iso(end)}
    fields["duration"] = (end - start).total_seconds() if start and end else None
    return end or utc_now(), fields


def dag_run_id(change: DagRunChange, instance: str | None = None) -> uuid.UUID:
    """The event id of a dag run's state change.

    The start date is part of it, so a run cleared and run again (a new start date)
    publishes new events rather than duplicates of the first run's.
    """
    start = _utc(change.start_date)
    return deterministic_id(
        "airflow",
        instance or "",
        change.dag_id,
        change.run_id,
        start.isoformat() if start else "",
        change.state,
    )


def task_instance_id(change: TaskInstanceChange, instance: str | None = None) -> uuid.UUID:
    """The event id of a task instance's state change (one try of one mapped index)."""
    return deterministic_id(
        "airflow",
        instance or "",
        change.dag_id,
        change.run_id,
        change.task_id,
        change.map_index,
        change.try_number,
        change.state,
    )


def dag_run_event(change: DagRunChange, *, instance: str | None = None) -> Event:
    """``airflow.dag_run.<state>`` for ``change``."""
    occurred, timing = _timing(change.state, change.start_date, change.end_date)
    payload: dict[str, Any] = {
        "dag_id": change.dag_id,
        "run_id": change.run_id,
        "run_type": change.run_type,
        "state": change.airflow_state,
        "logical_date": _iso(_utc(change.logical_date)),
        **timing,
    }
    if change.state == "failed":
        payload["error"] = change.error
    return Event(
        id=dag_run_id(change, instance),
        occurred=occurred,
        event=f"airflow.dag_run.{change.state}",
        resource=_labels(instance, id=f"airflow.{change.dag_id}", dag_id=change.dag_id),
        payload=payload,
    )


def task_instance_event(change: TaskInstanceChange, *, instance: str | None = None) -> Event:
    """``airflow.task_instance.<state>`` for ``change``."""
    occurred, timing = _timing(change.state, change.start_date, change.end_date)
    payload: dict[str, Any] = {
        "dag_id": change.dag_id,
        "run_id": change.run_id,
        "task_id": change.task_id,
        "map_index": change.map_index,
        "try_number": change.try_number,
        "state": change.airflow_state,
        "logical_date": _iso(_utc(change.logical_date)),
        **timing,
    }
    if change.state == "failed":
        payload["error"] = change.error
    return Event(
        id=task_instance_id(change, instance),
        occurred=occurred,
        event=f"airflow.task_instance.{change.state}",
        resource=_labels(
            instance,
            id=f"airflow.{change.dag_id}.{change.task_id}",
            dag_id=change.dag_id,
            task_id=change.task_id,
        ),
        related=[_labels(instance, id=f"airflow.{change.dag_id}", role="dag")],
        payload=payload,
    )
