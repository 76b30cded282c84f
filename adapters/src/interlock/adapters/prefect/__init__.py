"""Prefect: its event stream as Interlock events, and executors acting on Prefect.

Install with ``pip install 'interlock-adapters[prefect]'`` (httpx, websockets).

- ``prefect.events`` (entry point in ``interlock.adapters``):
  :class:`PrefectEventsAdapter` streams a Prefect server's events
  (``/api/events/out``) and republishes each as an Interlock event, Prefect's name,
  labels, related resources, payload, time and id kept (:func:`to_interlock`).
- ``prefect_run_deployment``, ``prefect_pause_work_queue``,
  ``prefect_resume_work_queue`` (entry points in ``interlock.actions``, loaded by the
  service): :mod:`interlock.adapters.prefect.actions`.

Configuration, the event mapping and examples: ``docs/adapters/prefect.md``.
"""

from interlock.adapters.prefect._connection import PrefectConnection
from interlock.adapters.prefect._mapping import event_name, label_key, to_interlock
from interlock.adapters.prefect.events import PrefectEventsAdapter

__all__ = [
    "PrefectConnection",
    "PrefectEventsAdapter",
    "event_name",
    "label_key",
    "to_interlock",
]
