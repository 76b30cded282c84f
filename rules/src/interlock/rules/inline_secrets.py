"""Credentials written inline in a rule: found, and steered to where secrets belong.

A rule is stored as written: in the service's database (its rules and their versions),
in the outbox rows of its actions (rendered), shown by ``interlock rules`` (redacted in
API answers). So an Apprise URL holding a token, or an ``Authorization`` header written
in a rule, sits in plain text there. Notification channels exist for exactly this: the
service stores a channel's URL encrypted (``interlock channels add NAME URL``) and a rule
names the channel (``notify("NAME")``); connections do the same for webhooks and
adapters' executors (``webhook(connection="NAME", path=...)``).

Interlock does not refuse such rules (nothing else breaks, and some endpoints have no
other way in yet): :func:`inline_secret_warnings` gives a warning per credential, which
``interlock rules check``, ``interlock rules apply`` (``warnings`` of ``POST /api/rules``)
and the service's start (rules from ``rules_dir``) show. What counts as a credential:

- an Apprise URL in ``notify(...)`` / ``approve(...)`` with a user or password, a query
  parameter named like a key, or a scheme whose path is a token (``slack://``,
  ``discord://``, ``tgram://``, ...: every scheme but the generic ``json``, ``xml``,
  ``form`` and their ``s`` forms);
- a webhook's URL with a user, password or key-like query parameter; a webhook header
  that carries credentials (``Authorization``, ``Proxy-Authorization``, ``Cookie``,
  ``X-API-Key``, any header with a word ``token``, ``secret``, ``password``,
  ``api-key`` or ``access-key`` in its name);
- values that are one template (``{{ event.payload.token }}``) are not written in the
  rule and do not count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from urllib.parse import parse_qsl, urlsplit

from interlock.rules.actions import Approve, Notify, Webhook
from interlock.rules.errors import RuleIssue
from interlock.rules.rule import Rule

__all__ = ["inline_secret_warnings"]

_GENERIC_SCHEMES = frozenset({"json", "jsons", "xml", "xmls", "form", "forms"})
_SECRET_QUERY = re.compile(
    r"(^|[-_])(token|secret|password|passwd|pwd|signature|sig|api[-_]?key|apikey|"
    r"access[-_]?key|auth|key|code)($|[-_])",
    re.IGNORECASE,
)
_SECRET_HEADER = re.compile(
    r"(^|[-_])(authorization|cookie|token|secret|password|api[-_]?key|apikey|"
    r"access[-_]?key)($|[-_])",
    re.IGNORECASE,
)
_TEMPLATE = re.compile(r"^\s*\{\{.*\}\}\s*$", re.DOTALL)
_CHANNEL_HINT = (
    "add it as a channel, stored encrypted (interlock channels add NAME URL), and write "
    '{call}("NAME")'
)
_WEBHOOK_HINT = (
    "a rule is stored as written (in the database, and in its actions' outbox rows): put "
    "the URL's credentials in an http connection, stored encrypted (interlock connections "
    'add NAME http base_url=URL token=-), and write webhook(connection="NAME", path=...)'
)


def inline_secret_warnings(rules: Sequence[Rule]) -> list[RuleIssue]:
    """A warning for each credential written inline in ``rules``, in field order."""
    return [issue for rule in rules for issue in _issues(rule)]


def _issues(rule: Rule) -> Iterator[RuleIssue]:
    for field, actions in (("then", rule.then), ("on_resolved", rule.on_resolved)):
        for index, action in enumerate(actions):
            path = f"{field}[{index}]"
            if isinstance(action, Notify | Approve) and action.url:
                call = "notify" if isinstance(action, Notify) else "approve"
                why = _apprise_secret(action.url)
                if why:
                    yield RuleIssue(
                        rule=rule.name,
                        path=f"{path}.url",
                        message=f"an Apprise URL {why} is written in the rule: it is stored "
                        "in plain text",
                        hint=_CHANNEL_HINT.format(call=call),
                    )
            elif isinstance(action, Webhook):
                yield from _webhook_issues(rule.name, path, action)


def _apprise_secret(url: str) -> str | None:
    """How ``url`` (an Apprise URL) carries a credential, if it does."""
    if _TEMPLATE.match(url):
        return None
    parts = urlsplit(url)
    if parts.password or parts.username:
        return "with a user and password"
    if any(_SECRET_QUERY.search(name) for name, _ in parse_qsl(parts.query)):
        return "with a key in its query"
    if parts.scheme and parts.scheme.lower() not in _GENERIC_SCHEMES:
        return f"of {parts.scheme}:// (its path holds the service's tokens)"
    return None


def _webhook_issues(rule: str, path: str, webhook: Webhook) -> Iterator[RuleIssue]:
    parts = urlsplit(webhook.url)
    if not _TEMPLATE.match(webhook.url):
        secret_query = [name for name, _ in parse_qsl(parts.query) if _SECRET_QUERY.search(name)]
        if parts.password or parts.username or secret_query:
            what = "a user and password" if parts.password or parts.username else "a key"
            yield RuleIssue(
                rule=rule,
                path=f"{path}.url",
                message=f"the webhook's URL holds {what} written in the rule: it is stored "
                "in plain text",
                hint=_WEBHOOK_HINT,
            )
    for name, value in webhook.headers.items():
        if _SECRET_HEADER.search(name) and not _TEMPLATE.match(value):
            yield RuleIssue(
                rule=rule,
                path=f"{path}.headers.{name}",
                message=f"the header {name} carries a credential written in the rule: it is "
                "stored in plain text",
                hint=_WEBHOOK_HINT,
            )
