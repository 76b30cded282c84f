"""Every module of the SDK and of the adapters imports on the Python running the tests.

``make test-pythons`` runs the SDK's tests on the oldest and newest Python the image has
(3.9 and 3.13), with only interlock-sdk and interlock-adapters installed: an idiom newer
than 3.9 (``datetime.UTC``, ``X | Y`` evaluated at run time, ``match``) fails here first.
A module whose optional dependency (an adapter's extra, Airflow itself) is not installed
is skipped, naming it.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import interlock.adapters
import interlock.sdk

OPTIONAL = {"airflow", "boto3", "botocore", "sqlalchemy", "psycopg", "httpx", "websockets"}


def modules() -> list[str]:
    names = []
    for package in (interlock.sdk, interlock.adapters):
        names.append(package.__name__)
        names.extend(
            info.name
            for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
            if not info.name.endswith(".__main__")  # runs the command line
        )
    return sorted(names)


@pytest.mark.parametrize("module", modules())
def test_the_module_imports(module: str) -> None:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in OPTIONAL:
            raise
        pytest.skip(f"{module} needs {missing}, an optional dependency not installed here")
