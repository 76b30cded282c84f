"""Deployments, runs, work queues and the workers that execute runs.

- :mod:`.targets`: what a deployment runs (a command or a Python entry point) and how
  a run's parameters reach it (``INTERLOCK_PARAMETERS``, JSON).
- :mod:`.catalog`: creating deployments with checked targets; the ``default`` queue.
- :mod:`.runs`: :func:`start_run` and :func:`cancel_run`; :mod:`.events`: the
  ``interlock.run.<state>`` events.
- :mod:`.worker`: :class:`Worker`, which claims runs and executes them as subprocesses.
- :mod:`.executors`: the ``run_deployment``, ``pause_queue``/``resume_queue`` and
  ``pause_schedule``/``resume_schedule`` actions.
"""

from interlock.service.deployments.catalog import (
    DEFAULT_QUEUE,
    create_deployment,
    ensure_default_queue,
)
from interlock.service.deployments.runs import cancel_run, start_run
from interlock.service.deployments.targets import PARAMETERS_VARIABLE, ProcessTarget, parse_target
from interlock.service.deployments.worker import Worker

__all__ = [
    "DEFAULT_QUEUE",
    "PARAMETERS_VARIABLE",
    "ProcessTarget",
    "Worker",
    "cancel_run",
    "create_deployment",
    "ensure_default_queue",
    "parse_target",
    "start_run",
]
