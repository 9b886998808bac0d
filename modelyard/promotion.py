"""May this version take this alias? The one rule book for every hand-made alias move
(`models promote`, `models rollback`): a pure function of what the registry says about the
version, so the rules live here and nowhere else, and a unit test checks them without MLflow.

- A version the gate rejected (tagged `rejected=true`) never takes an alias.
- A version whose deployment failed (tagged `deploy=failed`) never takes `production` again:
  the servers could not serve it.
- An allowed person (whoever may move aliases at all: the CLI's user, with write access to the
  registry and the platform database) may override either with `force` and a reason of their
  own; the audit row then says it was forced, over what, and why.
- A move to where the alias already is, is no move: nothing changes and nothing is audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from modelyard import tags as tag

FORCED = "FORCED"  # how a forced move's audit reason starts


class Verdict(StrEnum):
    MOVE = "move"
    ALREADY_THERE = "already there"
    REFUSED = "refused"


@dataclass(frozen=True)
class AliasDecision:
    """What to do about moving `alias` from `current` to `version`, and why."""

    verdict: Verdict
    alias: str
    version: str
    current: str | None
    # What speaks against the version (empty when nothing does); when forced, what was overridden.
    blockers: list[str] = field(default_factory=list)
    forced: bool = False
    # The reason to write into the audit row (None when nothing moves).
    audit_reason: str | None = None
    # Why a refused move was refused, in one sentence (None otherwise).
    refusal: str | None = None

    @property
    def moves(self) -> bool:
        return self.verdict is Verdict.MOVE


def blockers(tags: Mapping[str, str], alias: str) -> list[str]:
    """What the version's own record says against it taking `alias`, one sentence each."""
    found = []
    if tags.get(tag.REJECTED) == tag.TRUE:
        # The report's failed checks say why (its first line is only the verdict).
        failed = [
            line.removeprefix(tag.FAILED_CHECK).strip()
            for line in tags.get(tag.GATE_REPORT, "").splitlines()
            if line.startswith(tag.FAILED_CHECK)
        ]
        found.append("the gate rejected it" + (f" ({'; '.join(failed)})" if failed else ""))
    if alias == tag.PRODUCTION and tags.get(tag.DEPLOY) == tag.DEPLOY_FAILED:
        error = tags.get(tag.DEPLOY_ERROR, "").strip()
        found.append("its deployment failed" + (f" ({error[:200]})" if error else ""))
    return found


def decide_alias_move(
    version: str,
    tags: Mapping[str, str],
    alias: str,
    current: str | None,
    reason: str | None,
    default_reason: str,
    force: bool = False,
) -> AliasDecision:
    """Decide a hand-made move of `alias` (now at `current`) to `version`.

    `reason` is what the person said (None: nothing), `default_reason` what the audit row says
    then. Forcing past a blocker needs a reason of the person's own.
    """
    version = str(version)
    if current is not None and str(current) == version:
        return AliasDecision(Verdict.ALREADY_THERE, alias, version, current)
    against = blockers(tags, alias)
    given = (reason or "").strip()
    if not against:
        return AliasDecision(
            Verdict.MOVE, alias, version, current, audit_reason=given or default_reason
        )
    why = "; ".join(against)
    if not force:
        return AliasDecision(
            Verdict.REFUSED,
            alias,
            version,
            current,
            against,
            refusal=f"version {version} may not take @{alias}: {why}. An allowed person may "
            'override this with --force --reason "why" (audited as forced)',
        )
    if not given:
        return AliasDecision(
            Verdict.REFUSED,
            alias,
            version,
            current,
            against,
            refusal=f'--force on version {version} ({why}) needs --reason "why": the audit '
            "trail records who overrode the rules and why",
        )
    return AliasDecision(
        Verdict.MOVE,
        alias,
        version,
        current,
        against,
        forced=True,
        audit_reason=f"{FORCED} over: {why}; reason: {given}",
    )


def production_moved(current: str | None, compared_with: str | None, candidate: str) -> bool:
    """Has production moved since the candidate was compared (to a version other than the
    candidate itself)? Then that comparison is stale and must be made again before anything
    moves."""
    return current not in (compared_with, candidate)
