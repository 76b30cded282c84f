"""The Airflow plugin that registers the Interlock listener.

Airflow finds it through the ``airflow.plugins`` entry point of ``interlock-adapters``,
so installing the package into Airflow's environment is the whole setup::

    pip install 'interlock-adapters[airflow]'
    export INTERLOCK_NATS_URL=nats://nats:4222 INTERLOCK_SPOOL_DIR=/var/lib/airflow/spool

``airflow plugins`` lists it as ``interlock``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin  # type: ignore[import-not-found]

from interlock.adapters.airflow import listener

__all__ = ["InterlockPlugin"]


class InterlockPlugin(AirflowPlugin):  # type: ignore[misc]  # Airflow is untyped here
    """Registers :mod:`interlock.adapters.airflow.listener` with Airflow."""

    name = "interlock"
    listeners = [listener]  # noqa: RUF012 - Airflow's own class attribute
