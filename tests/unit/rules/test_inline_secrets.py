"""Credentials written inline in rules are found (and only those), to be steered to channels."""

from __future__ import annotations

import pytest

from interlock.rules import Rule, approve, notify, on, webhook
from interlock.rules.actions import AnyAction
from interlock.rules.inline_secrets import inline_secret_warnings

URL = "https://h.example/x"


def rule(*actions: AnyAction) -> Rule:
    return Rule(name="r", when=on("job.failed"), then=list(actions))


@pytest.mark.parametrize(
    ("action", "path", "says"),
    [
        (notify("slack://T0KEN-A/T0KEN-B/T0KEN-C"), "then[0].url", "of slack://"),
        (notify("json://ops:hunter2@hooks.local/x"), "then[0].url", "with a user and password"),
        (notify("jsons://hooks.local/x?token=abc"), "then[0].url", "with a key in its query"),
        (approve("tgram://123:abc/456"), "then[0].url", "of tgram://"),
        (webhook(URL, headers={"Authorization": "Bearer x"}), "then[0].headers.Authorization", ""),
        (webhook(URL, headers={"X-Api-Key": "abc"}), "then[0].headers.X-Api-Key", "the header"),
        (webhook("https://u:p@h.example/x"), "then[0].url", "holds a user and password"),
        (webhook("https://h.example/x?access_token=abc"), "then[0].url", "holds a key"),
    ],
)  # fmt: skip
def test_a_credential_written_in_a_rule_is_named(action: AnyAction, path: str, says: str) -> None:
    [warning] = inline_secret_warnings([rule(action)])
    assert warning.path == path
    assert says in warning.message
    assert "stored in plain text" in warning.message
    if path.endswith(".url") and "webhook" not in str(warning):
        assert "interlock channels add NAME URL" in warning.hint


@pytest.mark.parametrize(
    "action",
    [
        notify("data-team-slack"),  # a channel: the secret is stored encrypted
        notify("json://127.0.0.1:8099/oncall"),  # a generic endpoint, no credential
        notify("{{ event.payload.apprise_url }}"),  # not written in the rule
        webhook("https://h.example/x", headers={"Idempotency-Key": "k", "Content-Type": "x"}),
        webhook("https://h.example/x", headers={"Authorization": "{{ event.payload.auth }}"}),
        webhook("https://h.example/x?page=2"),
    ],
)
def test_no_credential_no_warning(action: AnyAction) -> None:
    assert inline_secret_warnings([rule(action)]) == []


def test_on_resolved_actions_are_looked_at_too() -> None:
    found = Rule(
        name="r",
        when=on("job.failed"),
        then=[notify("ops")],
        on_resolved=[notify("discord://1234/secret-token")],
    )
    [warning] = inline_secret_warnings([found])
    assert (warning.rule, warning.path) == ("r", "on_resolved[0].url")
