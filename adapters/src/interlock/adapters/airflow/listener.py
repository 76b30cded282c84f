"""The listener Airflow calls on state changes: each becomes an Interlock event.

Airflow's pluggy listener hooks (``on_dag_run_running/success/failed``,
``on_task_instance_running/success/failed``) are implemented here and registered by
:class:`~interlock.adapters.airflow.plugin.InterlockPlugin`. Task-instance hooks run in
the task's own process (Airflow 3: the task runner, with a ``RuntimeTaskInstance``);
dag-run hooks where the run's state changes (the scheduler, the API server, or
``airflow dags test``).

A hook never breaks or holds up Airflow: everything it does is inside ``try``/``except
Exception`` (logged, then dropped), and it publishes through
:func:`interlock.sdk.emit`, which waits at most ``INTERLOCK_PUBLISH_TIMEOUT`` seconds (2
by default) and otherwise spools the event on disk (``INTERLOCK_SPOOL_DIR``) for this
process or the next to send. Settings come from the ``INTERLOCK_*`` variables of the
Airflow process (see :meth:`interlock.sdk.PublisherConfig.from_env`), plus
``INTERLOCK_AIRFLOW_INSTANCE`` (an optional name of this Airflow, a label on every
event).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, cast

from airflow.listeners import hookimpl as _airflow_hookimpl  # type: ignore[import-not-found]

from interlock.adapters.airflow._events import (
    DagRunChange,
    State,
    TaskInstanceChange,
    dag_run_event,
    error_summary,
    state_of,
    task_instance_event,
)
from interlock.sdk.config import PublisherConfig
from interlock.sdk.event import Event
from interlock.sdk.sync import emit

__all__ = [
    "on_dag_run_failed",
    "on_dag_run_running",
    "on_dag_run_success",
    "on_task_instance_failed",
    "on_task_instance_running",
    "on_task_instance_success",
]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., None])

SOURCE = "adapter.airflow.listener"
"""The ``source`` of the plugin's events unless ``INTERLOCK_SOURCE`` says otherwise."""


def _hookimpl(function: F) -> F:
    return cast(F, _airflow_hookimpl(function))


_config: PublisherConfig | None = None


def _publisher_config() -> PublisherConfig:
    """Built once per process from ``INTERLOCK_*`` (a forked task reuses its parent's)."""
    global _config  # noqa: PLW0603 - one configuration per process, read lazily
    if _config is None:
        _config = PublisherConfig.from_env(source=os.environ.get("INTERLOCK_SOURCE") or SOURCE)
    return _config


def _instance() -> str | None:
    return os.environ.get("INTERLOCK_AIRFLOW_INSTANCE") or None


def _publish(build: Callable[[], Event | None], hook: str) -> None:
    """Build and publish one event; log and swallow anything that goes wrong."""
    try:
        event = build()
        if event is not None:
            emit(event, config=_publisher_config())
    except Exception:  # a listener must never break Airflow
        logger.exception("interlock: %s could not publish its event (Airflow goes on)", hook)


def _get(obj: object, *paths: str) -> Any:
    """The first attribute path (``a.b.c``) of ``obj`` that exists and is not ``None``."""
    for path in paths:
        value: Any = obj
        try:
            for name in path.split("."):
                value = getattr(value, name)
        except Exception:  # noqa: BLE001, S112 - a missing or lazy-load-failing attribute: next path
            continue
        if value is not None:
            return value
    return None


def _datetime(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _dag_run_change(dag_run: Any, state: State, error: str | None = None) -> DagRunChange:
    airflow_state = _get(dag_run, "state")
    return DagRunChange(
        dag_id=str(dag_run.dag_id),
        run_id=str(dag_run.run_id),
        state=state,
        airflow_state=str(getattr(airflow_state, "value", airflow_state) or ""),
        run_type=_string(_get(dag_run, "run_type")),
        logical_date=_datetime(_get(dag_run, "logical_date", "execution_date")),
        start_date=_datetime(_get(dag_run, "start_date")),
        end_date=_datetime(_get(dag_run, "end_date")),
        error=error,
    )


def _string(value: object) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _task_instance_change(
    task_instance: Any, state: State, default_state: str, error: object = None
) -> TaskInstanceChange:
    airflow_state = _string(_get(task_instance, "state"))
    if state_of(airflow_state) != state:
        airflow_state = default_state
    map_index = _get(task_instance, "map_index")
    return TaskInstanceChange(
        dag_id=str(task_instance.dag_id),
        run_id=str(task_instance.run_id),
        task_id=str(task_instance.task_id),
        state=state,
        airflow_state=airflow_state or default_state,
        try_number=int(_get(task_instance, "try_number") or 0),
        map_index=-1 if map_index is None else int(map_index),
        logical_date=_datetime(
            _get(
                task_instance,
                "_ti_context_from_server.dag_run.logical_date",  # Airflow 3, task runner
                "dag_run.logical_date",  # Airflow 3 ORM; 2.x (logical_date is an alias)
                "dag_run.execution_date",  # Airflow 2.x
            )
        ),
        start_date=_datetime(_get(task_instance, "start_date")),
        end_date=_datetime(_get(task_instance, "end_date")),
        error=error_summary(error),
    )


# -- dag runs ------------------------------------------------------------------------------


@_hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    """Publish ``airflow.dag_run.running``."""
    _publish(
        lambda: dag_run_event(_dag_run_change(dag_run, "running"), instance=_instance()),
        "on_dag_run_running",
    )


@_hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    """Publish ``airflow.dag_run.succeeded``."""
    _publish(
        lambda: dag_run_event(_dag_run_change(dag_run, "succeeded"), instance=_instance()),
        "on_dag_run_success",
    )


@_hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    """Publish ``airflow.dag_run.failed``; ``msg`` (Airflow's reason) is the error summary."""
    _publish(
        lambda: dag_run_event(
            _dag_run_change(dag_run, "failed", error_summary(msg or None)), instance=_instance()
        ),
        "on_dag_run_failed",
    )


# -- task instances ------------------------------------------------------------------------


@_hookimpl
def on_task_instance_running(previous_state: Any, task_instance: Any) -> None:
    """Publish ``airflow.task_instance.running``."""
    _publish(
        lambda: task_instance_event(
            _task_instance_change(task_instance, "running", "running"), instance=_instance()
        ),
        "on_task_instance_running",
    )


@_hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    """Publish ``airflow.task_instance.succeeded``."""
    _publish(
        lambda: task_instance_event(
            _task_instance_change(task_instance, "succeeded", "success"), instance=_instance()
        ),
        "on_task_instance_success",
    )


def _task_failed(task_instance: Any, error: object) -> None:
    _publish(
        lambda: task_instance_event(
            _task_instance_change(task_instance, "failed", "failed", error), instance=_instance()
        ),
        "on_task_instance_failed",
    )


def _on_task_instance_failed(previous_state: Any, task_instance: Any, error: object) -> None:
    """Publish ``airflow.task_instance.failed`` with the error summary.

    Also called for a try that will be retried (``state`` ``up_for_retry`` in the payload).
    """
    _task_failed(task_instance, error)


def _on_task_instance_failed_without_error(previous_state: Any, task_instance: Any) -> None:
    """Publish ``airflow.task_instance.failed`` (Airflow 2.8 and 2.9 pass no error)."""
    _task_failed(task_instance, None)


def _failed_hook_takes_error() -> bool:
    """Whether this Airflow's ``on_task_instance_failed`` spec has ``error`` (2.10 and later).

    pluggy refuses a hook implementation with an argument its spec lacks, so on 2.8 and
    2.9 the implementation without ``error`` is registered.
    """
    try:
        spec = importlib.import_module("airflow.listeners.spec.taskinstance")
    except ImportError:  # Airflow 3: the spec moved (airflow._shared) and has error
        return True
    parameters = inspect.signature(spec.on_task_instance_failed).parameters
    return "error" in parameters


on_task_instance_failed = _hookimpl(
    _on_task_instance_failed
    if _failed_hook_takes_error()
    else _on_task_instance_failed_without_error
)
