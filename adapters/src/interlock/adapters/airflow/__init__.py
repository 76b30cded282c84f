"""Airflow adapter (``pip install 'interlock-adapters[airflow]'``): DAG runs and tasks as events.

- :mod:`~interlock.adapters.airflow.listener` (registered by the Airflow plugin
  :class:`~interlock.adapters.airflow.plugin.InterlockPlugin`, found through the
  ``airflow.plugins`` entry point): runs inside Airflow and publishes each state change
  as it happens.
- ``airflow.rest`` (:class:`~interlock.adapters.airflow.bridge.AirflowRestAdapter`): polls
  Airflow's REST API, for installations where no plugin can be installed.
- :mod:`~interlock.adapters.airflow.actions`: the service's executors
  ``airflow_trigger_dag``, ``airflow_pause_dag`` and ``airflow_unpause_dag``.

Both sources emit the same events with the same ids (see
:mod:`~interlock.adapters.airflow._events`), so running both stores each change once.
This package imports neither Airflow nor httpx: each module imports what it needs.
See ``docs/adapters/airflow.md``.
"""

from interlock.adapters.airflow._events import (
    DagRunChange,
    TaskInstanceChange,
    dag_run_event,
    task_instance_event,
)

__all__ = ["DagRunChange", "TaskInstanceChange", "dag_run_event", "task_instance_event"]
