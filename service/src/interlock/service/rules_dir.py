"""The rules directory (``rules_dir``, e.g. ``config/rules/``): read, and applied over the store.

One server applies it at every start (:func:`apply_rules_dir`), over the stored rules:
what the files say wins, as it always did. Several replicas (issue 19) must not each
apply it when they start, or a restarted replica would undo the rule changes made
through the API since. With ``replicas.enabled`` the directory is applied by the owner of
the engine lease when it takes the engine, and **once per content**
(:func:`apply_rules_dir_once`): the digest of the rules the directory defines is recorded
in the table ``rules_dir_applied`` with the rules, and a directory whose digest is there
already is not applied again. So a new release of the rule files is applied by the first
replica to own the engine with it; a restart, a failover or an older replica taking over
again leaves the rules as the API last changed them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass

import sqlalchemy as sa

from interlock.rules.inline_secrets import inline_secret_warnings
from interlock.rules.loader import load_paths
from interlock.rules.rule import Rule, dump_rules
from interlock.service.actions.destinations import webhook_destination_issues
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.settings import Settings
from interlock.service.store import tables as t

__all__ = ["RulesDir", "apply_rules_dir", "apply_rules_dir_once", "read_rules_dir"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RulesDir:
    """The rules a rules directory defines (those that load and are allowed), and their digest."""

    rules: list[Rule]
    digest: str
    """SHA-256 of the rules' stored form, by name: equal rules, equal digest."""


def read_rules_dir(settings: Settings) -> RulesDir | None:
    """Load the rule modules under ``settings.rules_dir``; ``None`` if it does not exist.

    Problems and refused webhook destinations are logged; the other rules still load.
    """
    rules_dir = settings.rules_dir
    if not rules_dir.exists():
        logger.info("no rules directory %s: using the stored rules only", rules_dir)
        return None
    loaded = load_paths([rules_dir])
    for problem in loaded.problems:
        logger.error("rules: %s (the other rules still load)", problem)
    for warning in inline_secret_warnings(loaded.rules):
        logger.warning("rules: %s", warning)
    allowed = []
    for rule in loaded.rules:
        issues = webhook_destination_issues(rule, settings)
        for issue in issues:
            logger.error("rules: %s (the other rules still load)", issue)
        if not issues:
            allowed.append(rule)
    allowed.sort(key=lambda rule: rule.name)
    digest = hashlib.sha256(dump_rules(allowed)).hexdigest() if allowed else ""
    return RulesDir(rules=allowed, digest=digest)


async def apply_rules_dir(host: RuleHost, settings: Settings) -> None:
    """Apply the rules directory over the stored rules (one server, at every start)."""
    found = read_rules_dir(settings)
    if found is None:
        return
    changes = await host.apply(found.rules)
    changed = sum(1 for change in changes if change.change != "unchanged")
    logger.info("rules: %d from %s (%d new or changed)", len(changes), settings.rules_dir, changed)


async def apply_rules_dir_once(host: RuleHost, settings: Settings, replica: str) -> bool:
    """Apply the rules directory unless its content was applied before; ``True`` if applied.

    Called by the owner of the engine lease when it takes the engine (one replica at a
    time), so the check and the record need no lock of their own.
    """
    found = read_rules_dir(settings)
    if found is None or not found.rules:
        return False
    database = host.store._db
    query = sa.select(t.rules_dir_applied.c.replica, t.rules_dir_applied.c.applied_at)
    async with database.transaction() as connection:
        row = (
            await connection.execute(query.where(t.rules_dir_applied.c.digest == found.digest))
        ).first()
    if row is not None:
        logger.info(
            "rules: %s (%d rules) was applied by %s at %s; the stored rules stand "
            "(changes made since through the API are kept)",
            settings.rules_dir,
            len(found.rules),
            row.replica,
            row.applied_at,
        )
        return False
    changes = await host.apply(found.rules)
    with contextlib.suppress(sa.exc.IntegrityError):  # recorded meanwhile: the same rules
        async with database.transaction() as connection:
            await connection.execute(
                sa.insert(t.rules_dir_applied).values(
                    digest=found.digest, replica=replica, applied_at=database.now()
                )
            )
    changed = sum(1 for change in changes if change.change != "unchanged")
    logger.info(
        "rules: %d from %s (%d new or changed), applied once for this content",
        len(changes),
        settings.rules_dir,
        changed,
    )
    return True
