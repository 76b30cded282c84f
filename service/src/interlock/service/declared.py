"""Work queues and deployments declared in a TOML file (``config/deployments.toml``).

::

    [queues.etl]
    concurrency_limit = 2

    [deployments.backfill-sales]
    queue = "etl"
    description = "Reload one day of sales"
    schedule = "0 6 * * *"          # optional cron (UTC)
    parameters = { date = "today" }
    tags = ["sales"]
    target = { type = "process", command = ["python", "scripts/backfill.py"] }
    policy = { retries = 2, retry_delay = 60, timeout = 3600 }   # optional
    concurrency_limit = 1                                          # optional

    [deployments.sales-dag]
    target = { type = "airflow", connection = "prod-airflow", dag_id = "sales_daily" }

At start the service creates what the file declares and the store lacks (the ``default``
queue always exists). What exists already is left as it is: deployments and queues
change through the API and the CLI, and the store is the truth; a declared deployment
that differs from the stored one is logged, not overwritten. A target's type and fields
and a policy are checked as the API checks them; a target's connection is not (it may be
added later: a rule starting the deployment gets a warning at apply until it exists).
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any

from interlock.sdk.errors import ConfigurationError
from interlock.service.deployments.catalog import DEFAULT_QUEUE
from interlock.service.deployments.policy import parse_policy
from interlock.service.deployments.target_kinds import check_target
from interlock.service.store import AlreadyExists, Store, StoreError

__all__ = ["apply_declared"]

logger = logging.getLogger(__name__)

_DEPLOYMENT_FIELDS = {
    "queue",
    "target",
    "schedule",
    "parameters",
    "tags",
    "description",
    "policy",
    "concurrency_limit",
}


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError("deployments_file", f"{path} is not valid TOML: {exc}") from exc


async def apply_declared(store: Store, path: Path) -> list[str]:
    """Create the queues and deployments ``path`` declares and the store lacks.

    Returns the names created. A missing file declares nothing.

    Raises:
        ConfigurationError: the file is not valid TOML or declares something invalid;
            the message names the file and the entry.
    """
    created: list[str] = []
    try:
        await store.queues.create(DEFAULT_QUEUE)
        created.append(f"queue {DEFAULT_QUEUE}")
    except AlreadyExists:
        pass
    document = _read(path)
    unknown = set(document) - {"queues", "deployments"}
    if unknown:
        raise ConfigurationError(
            "deployments_file",
            f"{path}: unknown tables {sorted(unknown)} (use [queues.NAME] and [deployments.NAME])",
        )
    for name, queue in document.get("queues", {}).items():
        try:
            await store.queues.create(name, concurrency_limit=queue.get("concurrency_limit"))
            created.append(f"queue {name}")
        except AlreadyExists:
            pass
        except StoreError as exc:
            raise ConfigurationError("deployments_file", f"{path}: [queues.{name}]: {exc}") from exc
    for name, spec in document.get("deployments", {}).items():
        extra = set(spec) - _DEPLOYMENT_FIELDS
        if extra or "target" not in spec:
            problem = f"unknown fields {sorted(extra)}" if extra else "needs a target"
            raise ConfigurationError("deployments_file", f"{path}: [deployments.{name}]: {problem}")
        try:
            check_target(name, spec["target"])
            policy = parse_policy(name, spec.get("policy"))
            await store.deployments.create(
                name,
                target=spec["target"],
                queue=spec.get("queue", DEFAULT_QUEUE),
                schedule=spec.get("schedule"),
                parameters=spec.get("parameters", {}),
                tags=spec.get("tags", []),
                description=spec.get("description", ""),
                policy=policy.as_json(),
                concurrency_limit=spec.get("concurrency_limit"),
            )
            created.append(f"deployment {name}")
        except AlreadyExists:
            stored = await store.deployments.get(name)
            if stored.target != spec["target"] or stored.queue != spec.get("queue", DEFAULT_QUEUE):
                logger.warning(
                    "deployment %s in %s differs from the stored one; the stored one stays "
                    "(change it through the API)",
                    name,
                    path,
                )
        except StoreError as exc:
            raise ConfigurationError(
                "deployments_file", f"{path}: [deployments.{name}]: {exc}"
            ) from exc
    if created:
        logger.info("created from %s: %s", path, ", ".join(created))
    return created
