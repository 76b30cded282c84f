"""Interlock adapters: one subpackage per bridged system (``interlock.adapters.<name>``).

Each adapter sits behind an extra of ``interlock-adapters`` (``[s3]``, ``[db]``,
``[airflow]``, ``[prefect]``) so a producer installs only what it needs.
"""

__all__: list[str] = []
