"""Where webhooks may go: the allow-list and its posture, at apply and at execution.

A webhook's URL is a template rendered over the firing. When its scheme, host or port
comes from a template (``{{ event.payload.url }}``, ``https://{{ event.payload.host }}/``),
whoever publishes the event chooses where Interlock sends a request: an internal admin
endpoint, a cloud metadata address, someone else's server (issue 14, finding 9). So:

- **No allow-list** (``actions.webhooks.allowed_destinations`` empty, the default): a
  webhook may go to an origin its rule writes literally — the rule author chose it. A
  template in the path or query (``https://hooks.example.com/{{ key }}``) keeps the origin
  literal and is fine. A template anywhere in ``scheme://host:port`` (or the user
  information before the host) is refused: at apply by :func:`webhook_destination_issues`,
  and at execution, where a rendered URL must reach an origin the rule writes literally.
- **An allow-list**: every webhook's destination must match one of its entries (see
  :mod:`~interlock.service.actions.origins` for the forms), the literal ones too; a
  templated origin is accepted at apply and its rendered URL checked at execution.

At execution the check is on the URL as rendered, parsed as it is sent; a refusal fails
the action at once (not retried, so it does not count toward the breaker more than once)
with a message naming the origin and the setting. The rule the check compares with is
the rule as this service has it loaded; an action whose rule is no longer loaded
(deleted since it fired) is judged by the allow-list alone. Redirects are never
followed, so the origin checked is the only one called. Names are compared, not
addresses: a name that resolves to an internal address passes; list names you trust.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING

from interlock.rules.actions import Webhook
from interlock.rules.errors import RuleIssue
from interlock.rules.rule import Rule
from interlock.service.actions.origins import DEFAULT_PORTS, DestinationPattern, Origin, origin_of

if TYPE_CHECKING:
    from interlock.service.settings import Settings, WebhookSettings

__all__ = [
    "ALLOW_LIST_SETTING",
    "DestinationPolicy",
    "templated_origin",
    "webhook_destination_issues",
    "written_origins",
]

ALLOW_LIST_SETTING = "actions.webhooks.allowed_destinations"
_ALLOW_LIST_VARIABLE = "INTERLOCK_ACTIONS__WEBHOOKS__ALLOWED_DESTINATIONS"
_MARKERS = ("{{", "{%", "{#")


def templated_origin(url: str) -> bool:
    """Whether a template (``{{``, ``{%``, ``{#``) lies in the URL's ``scheme://authority``.

    The authority is everything from ``://`` to the first ``/``, ``?`` or ``#`` written
    literally after it; a URL with no literal ``://`` before its first template has a
    templated scheme, so its origin is templated too.
    """
    found = [index for marker in _MARKERS if (index := url.find(marker)) >= 0]
    if not found:
        return False
    first = min(found)
    start = url.find("://")
    if start < 0 or first < start + 3:
        return True
    start += 3
    end = next((start + i for i, c in enumerate(url[start:]) if c in "/?#"), len(url))
    return first < end


def _webhooks(rule: Rule) -> Iterator[tuple[str, Webhook]]:
    for name, actions in (("then", rule.then), ("on_resolved", rule.on_resolved)):
        for index, action in enumerate(actions):
            if isinstance(action, Webhook):
                yield f"{name}[{index}].url", action


def written_origins(rule: Rule) -> frozenset[Origin]:
    """The origins the rule's webhooks write literally (templated ones excluded)."""
    origins = set()
    for _, action in _webhooks(rule):
        if not templated_origin(action.url) and (origin := origin_of(action.url)) is not None:
            origins.add(origin)
    return frozenset(origins)


class DestinationPolicy:
    """The allow-list of the settings, compiled: one per service (see the module docstring).

    Args:
        settings: ``settings.actions.webhooks``.
    """

    def __init__(self, settings: WebhookSettings) -> None:
        self.allow_list: tuple[DestinationPattern, ...] = tuple(
            DestinationPattern.parse(text) for text in settings.allowed_destinations
        )
        self.allowed = functools.lru_cache(maxsize=1024)(self._allowed)

    def _allowed(self, origin: Origin) -> bool:
        """Whether the allow-list names ``origin``."""
        return any(pattern.matches(origin) for pattern in self.allow_list)

    def refusal(self, origin: Origin, written: Collection[Origin] | None) -> str | None:
        """Why a request to ``origin`` may not go, or ``None`` if it may.

        Args:
            origin: Where the rendered URL goes.
            written: The origins the action's rule writes literally
                (:func:`written_origins`); ``None`` when the rule is not known here.
        """
        if self.allow_list:
            if self.allowed(origin):
                return None
            return (
                f"the destination {_shown(origin)} is not allowed: it matches no entry of "
                f"{ALLOW_LIST_SETTING} ({_ALLOW_LIST_VARIABLE})"
            )
        if written is None or origin in written:
            return None
        return (
            f"the destination {_shown(origin)} is not allowed: it is not written in the rule "
            f"(it came from a template), and {ALLOW_LIST_SETTING} ({_ALLOW_LIST_VARIABLE}) "
            "is not set; list the destinations templates may reach there"
        )

    def issues(self, rule: Rule) -> list[RuleIssue]:
        """What :func:`webhook_destination_issues` reports, with this policy."""
        issues = []
        for path, action in _webhooks(rule):
            if templated_origin(action.url):
                if not self.allow_list:
                    issues.append(
                        RuleIssue(
                            rule=rule.name,
                            path=path,
                            message="the URL's scheme, host or port is a template, so whoever "
                            "publishes the event would choose where the request goes",
                            hint="write the origin literally (https://hooks.example.com/"
                            "{{ key }}), or list the destinations it may reach in "
                            f"{ALLOW_LIST_SETTING}",
                        )
                    )
                continue
            origin = origin_of(action.url)
            if origin is not None and self.allow_list and not self.allowed(origin):
                issues.append(
                    RuleIssue(
                        rule=rule.name,
                        path=path,
                        message=f"the destination {_shown(origin)} matches no entry of "
                        f"{ALLOW_LIST_SETTING}",
                        hint="add it there, or send the webhook elsewhere",
                    )
                )
        return issues


def webhook_destination_issues(rule: Rule, settings: Settings) -> list[RuleIssue]:
    """The rule's webhooks that may not go where they point, as issues to refuse it at apply.

    A URL whose origin is a template, unless the allow-list is set; with an allow-list,
    a literal origin it does not match. Invalid URLs are not reported here (rule
    validation does). Pure: no I/O, settings read only.
    """
    return DestinationPolicy(settings.actions.webhooks).issues(rule)


def _shown(origin: Origin) -> str:
    """``https://host`` (the port only when not the scheme's default): as people write it."""
    default = DEFAULT_PORTS[origin.scheme]
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    port = "" if origin.port == default else f":{origin.port}"
    return f"{origin.scheme}://{host}{port}"
