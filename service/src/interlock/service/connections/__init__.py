"""Connections at work: checking one (``connections test``), publishing their changes.

The store keeps them (:mod:`interlock.service.store.connections`); this package is what
the service does with them besides resolving them for executors.
"""
