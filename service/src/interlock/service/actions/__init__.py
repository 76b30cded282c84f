"""Carrying out actions: the dispatcher, the executor registry and the built-in executors.

- :mod:`~interlock.service.actions.executor`: the contract (``Executor``,
  ``ActionRequest``, ``ActionResult``, ``ActionFailed``); adapters implement it;
- :mod:`~interlock.service.actions.registry`: executors from the ``interlock.actions``
  entry points;
- :mod:`~interlock.service.actions.dispatcher`: runs the outbox (retries, time limits,
  circuit breaker, ``interlock.action.*`` events);
- built-in executors: :mod:`~.notify`, :mod:`~.webhook`, :mod:`~.emit`,
  :mod:`~.rule_control`; ``approve`` steps: :mod:`~.approvals`; the breaker's
  ``resume_action``: :mod:`~.breaker`.

Import the submodules you need: this package imports nothing heavy by itself, so an
entry point loading one executor loads only that executor.
"""

from interlock.service.actions.executor import (
    ActionFailed,
    ActionRequest,
    ActionResult,
    Executor,
    ExecutorFactory,
)

__all__ = ["ActionFailed", "ActionRequest", "ActionResult", "Executor", "ExecutorFactory"]
