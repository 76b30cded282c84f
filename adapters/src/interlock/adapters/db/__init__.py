"""Database adapters (SQLAlchemy 2; PostgreSQL, SQLite and any other dialect).

Install with ``pip install 'interlock-adapters[db]'``. Four kinds, each an entry point
in ``interlock.adapters`` (``interlock adapter run NAME --config FILE``):

=================  ====================================================================
``db.freshness``   ``max(<timestamp column>)`` advanced → ``db.table.updated``
``db.rows``        rows past the last key → ``db.rows.inserted``, one event per batch
``db.check``       a query that returns rows → ``db.check.failed``, else ``.passed``
``db.listen``      PostgreSQL ``LISTEN``/``NOTIFY`` → the notified events (push mode)
=================  ====================================================================

Configuration, events and examples: ``docs/adapters/db.md``.
"""

from interlock.adapters.db._source import Database
from interlock.adapters.db.checks import SQLCheckAdapter
from interlock.adapters.db.freshness import FreshnessAdapter
from interlock.adapters.db.listen import ListenAdapter, ListenRunner, ListenStats
from interlock.adapters.db.rows import NewRowsAdapter

__all__ = [
    "Database",
    "FreshnessAdapter",
    "ListenAdapter",
    "ListenRunner",
    "ListenStats",
    "NewRowsAdapter",
    "SQLCheckAdapter",
]
