"""Where webhooks may go (issue 14, finding 9): the allow-list and its posture.

At execution, through the pipeline's renderer, a real dispatcher, a real SQLite store
and a real receiver: a URL whose origin came from an event is refused unless
``actions.webhooks.allowed_destinations`` lets it through. At apply, the pure
:func:`webhook_destination_issues` and the patterns it reads.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

from integration.service.actions.dispatch_fixtures import (
    SECRET_KEY,
    START,
    actions_of,
    all_in,
    dispatching,
    eventually,
    running_services,
)
from integration.service.actions.receiver import Receiver
from interlock.rules import Rule, on, webhook
from interlock.rules.engine.firing import Firing
from interlock.sdk import Event
from interlock.sdk.errors import ConfigurationError
from interlock.service.actions.destinations import (
    templated_origin,
    webhook_destination_issues,
)
from interlock.service.actions.origins import DestinationPattern, Origin, origin_of
from interlock.service.context import Services
from interlock.service.pipeline.rendering import RecentEvents, rendered_entries
from interlock.service.settings import load_settings


async def _fire(services: Services, rule: Rule, payload: dict[str, Any]) -> None:
    """What the pipeline does when ``rule`` fires on an event with ``payload``."""
    event = Event(event="test.happened", resource={"id": "x"}, payload=payload, source="t")
    recent = RecentEvents()
    recent.add_all([event])
    firing = Firing(
        id=uuid.uuid4(), rule=rule.name, key="", status="fired", at=START,
        event_ids=[event.id], summary="fired",
    )  # fmt: skip
    await services.store.store_batch([firing], rendered_entries(firing, rule, recent))


@pytest.mark.parametrize(
    ("allowed", "delivered"),
    [((), False), (("127.0.0.1",), True), (("http://127.0.0.1:1",), False)],
    ids=["no-allow-list", "allowed", "other-port"],
)
async def test_a_destination_from_a_template_is_refused_unless_allowed(
    sqlite_url: str,
    streams: str,
    tmp_path: Path,
    allowed: tuple[str, ...],
    delivered: bool,
) -> None:
    async with (
        Receiver() as receiver,
        running_services(
            sqlite_url,
            streams,
            tmp_path / "spool",
            webhooks={"allowed_destinations": allowed},
        ) as services,
    ):
        rule = Rule(
            name="forwarder", when=on("test.happened"), then=[webhook("{{ event.payload.url }}")]
        )
        await services.rules.apply([rule])
        await _fire(services, rule, {"url": f"{receiver.url}/hook?token=s3cret"})
        async with dispatching(services):
            await eventually(lambda: all_in(services, "forwarder", "succeeded", "failed"))
        (row,) = await actions_of(services, "forwarder")
    if delivered:
        assert (row.state, len(receiver.requests)) == ("succeeded", 1)
        return
    assert (row.state, row.attempts, receiver.requests) == ("failed", 1, [])
    error = row.last_error or ""
    assert f"the destination http://127.0.0.1:{receiver.port} is not allowed" in error
    assert "actions.webhooks.allowed_destinations" in error
    assert "INTERLOCK_ACTIONS__WEBHOOKS__ALLOWED_DESTINATIONS" in error
    assert "s3cret" not in error


async def test_literal_origins_go_without_an_allow_list_and_must_match_one_when_set(
    sqlite_url: str, streams: str, tmp_path: Path
) -> None:
    async with Receiver() as receiver:
        rule = Rule(
            name="literal",
            when=on("test.happened"),
            then=[webhook(f"{receiver.url}/{{{{ event.payload.key }}}}")],  # path templated
        )
        for allowed, state in (((), "succeeded"), (("hooks.example.com",), "failed")):
            async with running_services(
                sqlite_url,
                streams,
                tmp_path / "spool",
                webhooks={"allowed_destinations": allowed},
            ) as services:
                await services.rules.apply([rule])
                await _fire(services, rule, {"key": f"k-{state}"})
                async with dispatching(services):
                    await eventually(lambda: all_in(services, "literal", "succeeded", "failed"))
                rows = await actions_of(services, "literal")
                assert rows[-1].state == state, rows[-1].last_error
    assert [r.path for r in receiver.requests] == ["/k-succeeded"]


# -- at apply: the pure check --------------------------------------------------------------


def _settings(*allowed: str) -> Any:
    return load_settings(
        config_file=None,
        secret_key=SECRET_KEY,
        actions={"webhooks": {"allowed_destinations": list(allowed)}},
    )


def _rule(*urls: str, resolved: str | None = None) -> Rule:
    return Rule(
        name="hooks",
        when=on("a.b"),
        then=[webhook(url) for url in urls],
        on_resolved=[webhook(resolved)] if resolved else [],
    )


@pytest.mark.parametrize(
    ("url", "templated"),
    [
        ("https://hooks.example.com/x", False),
        ("https://hooks.example.com/{{ key }}", False),
        ("https://hooks.example.com?to={{ event.payload.who }}", False),
        ("https://hooks.example.com#{{ key }}", False),
        ("https://hooks.example.com:8443/{% if key %}a{% endif %}", False),
        ("{{ event.payload.url }}", True),
        ("{{ scheme }}://hooks.example.com/x", True),
        ("https://{{ event.payload.host }}/x", True),
        ("https://hooks.{{ key }}.example.com/x", True),
        ("https://hooks.example.com:{{ port }}/x", True),
        ("https://hooks.example.com{{ path }}", True),
        ("https://user:{{ token }}@hooks.example.com/x", True),
        ("https://{# a note #}hooks.example.com/x", True),
        ("https://{% if key %}a.example{% endif %}/x", True),
    ],
)
def test_a_template_in_the_origin_is_told_from_one_in_the_path(url: str, templated: bool) -> None:
    assert templated_origin(url) is templated


def test_without_an_allow_list_a_templated_origin_is_refused_at_apply() -> None:
    rule = _rule(
        "https://hooks.example.com/{{ key }}",
        "https://{{ event.payload.host }}/x",
        resolved="{{ event.payload.url }}",
    )
    issues = webhook_destination_issues(rule, _settings())
    assert [(i.rule, i.path) for i in issues] == [
        ("hooks", "then[1].url"),
        ("hooks", "on_resolved[0].url"),
    ]
    assert "whoever publishes the event would choose" in issues[0].message
    assert "actions.webhooks.allowed_destinations" in issues[0].hint
    assert "rule 'hooks': then[1].url:" in str(issues[0])


def test_with_an_allow_list_every_literal_origin_must_match_and_templates_pass() -> None:
    settings = _settings("hooks.example.com", "*.corp.example", "https://alerts.example.org:8443")
    rule = _rule(
        "https://hooks.example.com/a",
        "http://hooks.example.com:8080/b",  # a host entry: any port, either scheme
        "https://build.eu.corp.example/c",
        "https://corp.example/d",  # a wildcard names hosts under it only
        "https://alerts.example.org:8443/e",
        "https://alerts.example.org/f",  # the origin entry pins port 8443
        "https://evil.example/g",
        "https://{{ event.payload.host }}/h",  # checked when it runs
    )
    issues = webhook_destination_issues(rule, settings)
    assert [(i.path, i.message) for i in issues] == [
        ("then[3].url", "the destination https://corp.example matches no entry of "
         "actions.webhooks.allowed_destinations"),
        ("then[5].url", "the destination https://alerts.example.org matches no entry of "
         "actions.webhooks.allowed_destinations"),
        ("then[6].url", "the destination https://evil.example matches no entry of "
         "actions.webhooks.allowed_destinations"),
    ]  # fmt: skip
    literal = _rule("https://hooks.example.com/{{ key }}")
    assert webhook_destination_issues(literal, _settings()) == []


def test_the_check_at_apply_reads_rules_as_stored() -> None:
    rule = _rule("https://{{ event.payload.host }}/x")
    stored = msgspec.json.decode(msgspec.json.encode(rule), type=Rule)
    assert len(webhook_destination_issues(stored, _settings())) == 1
    assert webhook_destination_issues(stored, _settings("*.example.com")) == []


@pytest.mark.parametrize(
    ("pattern", "url", "matches"),
    [
        ("hooks.example.com", "https://hooks.example.com/x", True),
        ("hooks.example.com", "http://HOOKS.Example.com.:9000/x", True),
        ("hooks.example.com", "https://hooks.example.com.evil.net/x", False),
        ("hooks.example.com", "https://evil.net/?hooks.example.com", False),
        ("hooks.example.com", "https://hooks.example.com@evil.net/", False),
        ("hooks.example.com:8443", "https://hooks.example.com:8443/", True),
        ("hooks.example.com:8443", "https://hooks.example.com/", False),
        ("*.corp.example", "https://a.b.corp.example/", True),
        ("*.corp.example", "https://corp.example/", False),
        ("*.corp.example", "https://evilcorp.example/", False),
        ("https://hooks.example.com", "https://hooks.example.com:443/", True),
        ("https://hooks.example.com", "http://hooks.example.com/", False),
        ("https://hooks.example.com/", "https://hooks.example.com/x", True),
        ("http://*.corp.example:8080", "http://x.corp.example:8080/", True),
        ("[fd00::7]:8080", "http://[fd00::7]:8080/", True),
        ("10.0.0.7", "http://10.0.0.7/", True),
        ("münchen.example", "https://xn--mnchen-3ya.example/", True),
    ],
)
def test_destination_patterns_match_origins(pattern: str, url: str, matches: bool) -> None:
    origin = origin_of(url)
    assert origin is not None
    assert DestinationPattern.parse(pattern).matches(origin) is matches


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("ftp://files.example.com", "the scheme must be http or https"),
        ("https://hooks.example.com/path", "no path, query or user"),
        ("hooks.example.com/path", "write a host"),
        ("*", "not a host name"),
        ("a.*.example", "a wildcard is allowed only as the first label"),
        ("*.com", "two labels at least"),
        ("hooks.example.com:http", "not a host[:port]"),
        ("", "not a host name"),
    ],
)
def test_a_pattern_in_the_settings_that_means_nothing_is_refused_at_start(
    pattern: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        DestinationPattern.parse(pattern)
    with pytest.raises(ConfigurationError, match=r"actions\.webhooks\.allowed_destinations"):
        _settings(pattern)


def test_origins_are_normalized() -> None:
    assert origin_of("HTTPS://Hooks.Example.COM./x") == Origin("https", "hooks.example.com", 443)
    assert origin_of("http://[::1]:8080/x") == Origin("http", "::1", 8080)
    assert str(Origin("http", "::1", 8080)) == "http://[::1]:8080"
    for nothing in ("ftp://x/", "http://", "/relative", "http://x:port/"):
        assert origin_of(nothing) is None
