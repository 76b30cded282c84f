"""The session's Prefect server: the ``prefect`` fixture, in ``tests/conftest.py``.

It is shared with the executor and adapter contract suites (``tests/contract/``), so a
session starts one Prefect server (see ``prefect_server.py``).
"""
