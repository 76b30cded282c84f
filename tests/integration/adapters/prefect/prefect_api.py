"""Arranging and inspecting a real Prefect server through its REST API, for the tests."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from interlock.adapters.prefect import PrefectConnection


class PrefectApi:
    """Blocking REST calls to one Prefect server."""

    def __init__(self, connection: PrefectConnection) -> None:
        self.client = httpx.Client(
            base_url=connection.base_url, headers=connection.headers(), timeout=30
        )

    def __enter__(self) -> PrefectApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        # Prefect answers 503 while its SQLite database is busy (e.g. its services just
        # started); its own client retries those too.
        for attempt in range(20):
            response = self.client.request(method, path, json=body)
            if response.status_code != 503:
                break
            time.sleep(0.25 * (attempt + 1))
        response.raise_for_status()
        return response.json() if response.content else None

    def deployment(self, flow: str, name: str, parameters: dict[str, Any]) -> str:
        """Create a flow and a deployment of it; return the deployment's id."""
        flow_id = self._json("POST", "/flows/", {"name": flow})["id"]
        created = self._json(
            "POST",
            "/deployments/",
            {"name": name, "flow_id": flow_id, "parameters": parameters},
        )
        return str(created["id"])

    def flow_runs(self, deployment_id: str) -> list[dict[str, Any]]:
        """Every flow run of a deployment."""
        body = {"deployments": {"id": {"any_": [deployment_id]}}}
        runs: list[dict[str, Any]] = self._json("POST", "/flow_runs/filter", body)
        return runs

    def run_deployment(self, deployment_id: str) -> dict[str, Any]:
        """Create a flow run of a deployment (scheduled)."""
        run: dict[str, Any] = self._json(
            "POST", f"/deployments/{deployment_id}/create_flow_run", {}
        )
        return run

    def pool_queue(self, pool: str, queue: str) -> None:
        """Create a work pool (type ``process``) and a queue in it."""
        self._json("POST", "/work_pools/", {"name": pool, "type": "process"})
        self._json("POST", f"/work_pools/{pool}/queues", {"name": queue})

    def queue_in_pool(self, pool: str, queue: str) -> dict[str, Any]:
        """A work queue of a work pool."""
        found: dict[str, Any] = self._json("GET", f"/work_pools/{pool}/queues/{queue}")
        return found

    def default_pool_queue(self, queue: str) -> dict[str, Any]:
        """Create a work queue without naming a pool (Prefect puts it in its default pool)."""
        created: dict[str, Any] = self._json("POST", "/work_queues/", {"name": queue})
        return created

    def queue_by_name(self, queue: str) -> dict[str, Any]:
        """A work queue found by name alone."""
        found: dict[str, Any] = self._json("GET", f"/work_queues/name/{queue}")
        return found

    def recorded(self, ids: list[str]) -> set[str]:
        """Which of the event ``ids`` Prefect has persisted (what a replay can send)."""
        since = datetime.now(UTC) - timedelta(hours=1)
        body = {
            "filter": {"id": {"id": ids}, "occurred": {"since": since.isoformat()}},
            "limit": 50,
        }
        page = self._json("POST", "/events/filter", body)
        return {str(event["id"]) for event in page["events"]}

    def emit(self, *events: dict[str, Any]) -> None:
        """Record events (``POST /api/events``)."""
        self._json("POST", "/events", list(events))


def prefect_event(
    name: str,
    resource: dict[str, str],
    *,
    related: list[dict[str, str]] | None = None,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Prefect event as its API takes it, with a fresh id and ``occurred`` = now."""
    return {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": name,
        "resource": resource,
        "related": related or [],
        "payload": payload or {},
    }
