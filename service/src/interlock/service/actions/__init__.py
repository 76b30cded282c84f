"""Carrying out actions: the dispatcher, the executor registry and the built-in executors.

The executor contract (``Executor``, ``ActionRequest``, ``ActionResult``,
``ActionFailed``, ``ExecutorContext``) is the SDK's :mod:`interlock.sdk.executors`, so
that plugins implement it without depending on the service. Here:

- :mod:`~interlock.service.actions.registry`: executors from the ``interlock.actions``
  entry points, built with a :class:`~.registry.ServiceContext`;
- :mod:`~interlock.service.actions.dispatcher`: runs the outbox (retries, time limits,
  circuit breaker, ``interlock.action.*`` events);
- built-in executors: :mod:`~.notify`, :mod:`~.webhook`, :mod:`~.emit`,
  :mod:`~.rule_control`; ``approve`` steps: :mod:`~.approvals`; the breaker's
  ``resume_action``: :mod:`~.breaker`.

Import the submodules you need: this package imports nothing by itself, so an entry
point loading one executor loads only that executor.
"""
