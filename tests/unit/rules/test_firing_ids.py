"""Firing ids are UUID5s of the firing's identity, stable across processes and versions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from interlock.rules.engine.firing import _NAMESPACE, firing_id

texts = st.text(max_size=40)
parts = st.lists(st.one_of(texts, st.integers(), st.datetimes(timezones=st.just(UTC))), max_size=4)


@given(texts, texts, st.sampled_from(["fired", "resolved"]), parts)
def test_firing_ids_are_uuid5(rule: str, key: str, status: str, extra: list[object]) -> None:
    text = "\x1f".join([rule, key, status, *(str(part) for part in extra)])
    made = firing_id(rule, key, status, *extra)
    assert made == uuid.uuid5(_NAMESPACE, text)
    assert (made.version, made.variant) == (5, uuid.RFC_4122)


def test_a_firing_id_does_not_change_between_releases() -> None:
    at = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert firing_id("sales-sla", "warehouse.sales", "fired", at, at) == uuid.UUID(
        "5f553334-2d40-5181-97ba-3604b329fed2"  # uuid.uuid5, computed once
    )
