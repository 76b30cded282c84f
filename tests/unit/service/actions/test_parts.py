"""Small parts of the dispatcher: backoff, what errors may say about URLs, log redaction."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from interlock.rules import Rule, call, emit, on, webhook
from interlock.rules.engine.firing import Firing, firing_id
from interlock.sdk.executors import ActionFailed
from interlock.service.actions.apprise_send import describe_target
from interlock.service.actions.dispatcher import Dispatcher
from interlock.service.actions.redact import SecretFilter, hiding, redact_text, url_origin
from interlock.service.actions.registry import Registry
from interlock.service.settings import ActionSettings
from interlock.service.store.records import action_kind, outbox_entries


class _Settings:
    actions = ActionSettings(backoff_initial="1s", backoff_max="10s")


def test_backoff_is_full_jitter_doubling_to_the_cap() -> None:
    dispatcher = Dispatcher.__new__(Dispatcher)
    dispatcher.settings = _Settings.actions
    for attempt, ceiling in ((1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (12, 10)):
        waits = [dispatcher.backoff(attempt) for _ in range(400)]
        assert all(timedelta(0) <= wait <= timedelta(seconds=ceiling) for wait in waits)
        assert max(waits) > timedelta(seconds=ceiling * 0.8)  # spread over the whole range
        assert min(waits) < timedelta(seconds=ceiling * 0.2)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.com/services/T0/B0/XXXX?token=abc", "https://hooks.example.com"),
        ("http://user:pw@10.0.0.1:8080/x", "http://10.0.0.1:8080"),
        ("http://[::1]:9/x", "http://[::1]:9"),
        ("not a url", "?://?"),
    ],
)
def test_url_origin_shows_no_path_query_or_password(url: str, shown: str) -> None:
    assert url_origin(url) == shown


def test_targets_are_named_without_their_url() -> None:
    assert describe_target("ops", None) == "channel 'ops'"
    assert describe_target(None, "slack://TokenA/TokenB/TokenC") == "an Apprise URL (slack://)"


def test_secret_filter_redacts_every_fragment_of_a_registered_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "slack://TokenA123/TokenB456/TokenC789"
    log = logging.getLogger("apprise")
    caplog.set_level(logging.DEBUG, logger="apprise")
    with hiding(secret):
        log.debug("posting to %s", "https://hooks.slack.com/services/TokenA123/TokenB456/x")
        log.warning("connection error to TokenC789")
    log.debug("after: TokenA123")  # no longer registered
    texts = [record.getMessage() for record in caplog.records]
    assert texts == [
        "posting to https://hooks.slack.com/services/***/***/x",
        "connection error to ***",
        "after: TokenA123",
    ]
    assert redact_text(f"failed: {secret}", secret) == "failed: ***"
    assert SecretFilter().redact("nothing registered") == "nothing registered"


async def test_registry_says_why_a_kind_has_no_executor() -> None:
    registry = Registry({}, broken={"airflow_trigger_dag": "ImportError: no module named 'x'"})
    with pytest.raises(ActionFailed) as broken:
        await registry.executor("airflow_trigger_dag")
    assert not broken.value.retryable
    assert str(broken.value) == (
        "no executor for action kind 'airflow_trigger_dag' (entry point failed to load: "
        "ImportError: no module named 'x')"
    )
    with pytest.raises(ActionFailed, match=r"no interlock\.actions entry point of that name"):
        await registry.executor("teleport")


def test_an_action_kind_is_its_tag_or_the_executor_it_calls() -> None:
    rule = Rule(
        name="kinds",
        when=on("job.failed"),
        then=[webhook("http://127.0.0.1:9/x"), call("airflow_trigger_dag", dag_id="backfill")],
        on_resolved=[emit("job.recovered", "{{ key }}")],
    )
    kinds = [action_kind(msgspec.to_builtins(a)) for a in (*rule.then, *rule.on_resolved)]
    assert kinds == ["webhook", "airflow_trigger_dag", "emit"]
    firing = Firing(
        id=firing_id("kinds", "k", "fired"),
        rule="kinds",
        key="k",
        status="fired",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        event_ids=[],
    )
    assert [entry.kind for entry in outbox_entries(firing, rule.then)] == kinds[:2]
