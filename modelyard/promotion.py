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


# --- Who may move production, and whether production is where the trail says -----------------


def person(actor: str) -> str:
    """The person an actor names: `user:alice` and `alice` are both alice (the audit trail
    names people `user:NAME`; `promotion.approvers` lists plain names)."""
    return actor.strip().removeprefix("user:").strip()


def may_approve(who: str, approvers: tuple[str, ...]) -> bool:
    """May `who` answer a manual approval, or promote or roll back production by hand? Anyone
    when `promotion.approvers` is empty (the default); otherwise only the people it lists."""
    return not approvers or person(who) in {person(name) for name in approvers}


def approver_refusal(who: str, approvers: tuple[str, ...], what: str) -> str:
    """The one sentence a person who may not do `what` reads (and the audit trail keeps)."""
    return (
        f"{person(who) or 'an unnamed person'} may not {what}: promotion.approvers allows only "
        f"{', '.join(approvers)}"
    )


class Pointer(StrEnum):
    RECORDED = "recorded"
    # The registry names another version than the trail's last move: moved outside ModelYard.
    UNRECORDED = "unrecorded"
    # The trail holds no row for the alias at all (a registry ModelYard never moved, or a
    # server pointed at another platform database): nothing to compare with, so not judged.
    UNTRACKED = "untracked"


@dataclass(frozen=True)
class PointerCheck:
    """Is `model@alias` where the audit trail's last move put it?"""

    model: str
    alias: str
    state: Pointer
    # The version the registry names (None: the alias does not exist there).
    registry: str | None
    # The version the trail's last row names (None: no row, or the alias was removed).
    recorded: str | None

    @property
    def tampered(self) -> bool:
        return self.state is Pointer.UNRECORDED

    @property
    def sentence(self) -> str:
        where = f"{self.model}@{self.alias}"
        if self.state is Pointer.UNTRACKED:
            return f"{where}: the audit trail has no move of it, so nothing to compare with"
        if self.state is Pointer.RECORDED:
            return f"{where} is at {_named(self.registry)}, as the audit trail records"
        return (
            f"{where} points at {_named(self.registry)} but the audit trail's last move says "
            f"{_named(self.recorded)}: moved outside ModelYard (MLflow UI/API)"
        )


def _named(version: str | None) -> str:
    return f"version {version}" if version else "no version"


def check_pointer(
    model: str, alias: str, registry_version: str | None, recorded_to: str | None
) -> PointerCheck:
    """Compare where the registry's alias points with the trail's newest row for it.

    `recorded_to` is that row's `to_version`: None when the trail holds no row for the alias,
    empty when the last row removed it. A server following the alias follows only a recorded
    position; an unrecorded one is reported, not served."""
    current = str(registry_version) if registry_version is not None else None
    if recorded_to is None:
        return PointerCheck(model, alias, Pointer.UNTRACKED, current, None)
    recorded = str(recorded_to) or None
    state = Pointer.RECORDED if current == recorded else Pointer.UNRECORDED
    return PointerCheck(model, alias, state, current, recorded)
