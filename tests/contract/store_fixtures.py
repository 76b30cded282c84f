"""Builders for the store contract suite: rules, firings, outbox entries, a sync engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from cryptography.fernet import Fernet

from interlock.rules import Rule, notify, on, run_deployment, webhook
from interlock.rules.engine.firing import Firing, firing_id
from interlock.service.store import OutboxEntry, outbox_entries

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SECRET_KEY = Fernet.generate_key().decode()


def make_rule(name: str = "sales-refreshed", *, title: str = "refreshed") -> Rule:
    return Rule(
        name=name,
        when=on("db.table.updated", for_each="resource.id"),
        then=[notify("data-team", title=title), run_deployment("build-reports")],
        tags=["sales"],
    )


def make_firing(
    rule: str = "sales-refreshed", key: str = "warehouse.sales", *, n: int = 0, at: datetime = START
) -> Firing:
    events = [uuid.uuid5(uuid.NAMESPACE_URL, f"{rule}/{key}/{n}")]
    return Firing(
        id=firing_id(rule, key, "fired", *events),
        rule=rule,
        key=key,
        status="fired",
        at=at + timedelta(seconds=n),
        window_start=at,
        window_end=at + timedelta(hours=1),
        event_ids=events,
        summary=f"{rule} fired for {key}",
    )


def entries_for(firing: Firing, count: int = 2) -> list[OutboxEntry]:
    actions = [notify("data-team"), webhook("http://127.0.0.1:9/hook"), run_deployment("x")]
    return outbox_entries(firing, actions[:count])


@contextmanager
def sync_engine(url: str) -> Iterator[sa.Engine]:
    """A plain (sync) engine on the same database, to look at what is really stored."""
    engine = sa.create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
