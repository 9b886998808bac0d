"""Rebuild from lineage: what a version's lineage allows to rebuild, and how the rebuilt model's
test figures compare with the recorded ones.

Pure decisions over what the adapter (`modelyard.adapters.rebuild`) reads: which commit the
code is rebuilt from (a `-dirty` or unknown one cannot be), whether the recorded params still
hash to the version's `params_hash`, and the verdict — identical when every test figure is
within `TOLERANCE` (a seeded CPU training is bit-identical), different otherwise, with each
figure's delta and every environment difference between the training and now.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from modelyard import tags as tag
from modelyard.lineage_key import clean_commit

TOLERANCE = 1e-6
ENV_PREFIX = "env."
# What the rebuild's environment reports as it was not at training time, when not recorded.
NOT_RECORDED = "not recorded"


class RebuildRefused(ValueError):
    """A version its lineage cannot rebuild; the message says why. Nothing was trained."""


def rebuild_commit(name: str, version: str, tags: Mapping[str, str]) -> str:
    """The commit whose code trained the version: `code_commit` (the code's own), else
    `git_commit` (the dataset's checkout, the code's too for a project's own data). Refused
    when it is `-dirty` or not a commit: that code exists nowhere."""
    commit = tags.get(tag.CODE_COMMIT) or tags.get(tag.GIT_COMMIT) or "unknown"
    if commit.endswith("-dirty"):
        raise RebuildRefused(
            f"{name} version {version} was trained from uncommitted changes (commit {commit}): "
            "its code cannot be rebuilt"
        )
    if not clean_commit(commit):
        raise RebuildRefused(
            f"{name} version {version} records no git commit of its code ({commit!r}): its "
            "code cannot be rebuilt"
        )
    return commit


def check_params(name: str, version: str, found: str, expected: str) -> None:
    """Refuse recorded params whose hash (`found`: `Params.digest` by the version's own code,
    whose params model made the tag) is not the version's `params_hash` tag."""
    if found != expected:
        raise RebuildRefused(
            f"{name} version {version}: its run's {tag.PARAMS_FILE} hashes to {found}, but its "
            f"{tag.PARAMS_HASH} tag says {expected}: these are not the params it was trained with"
        )


@dataclass(frozen=True)
class MetricRow:
    """One test figure, as recorded and as rebuilt (None: only one side has it)."""

    name: str
    recorded: float | None
    rebuilt: float | None

    @property
    def delta(self) -> float | None:
        if self.recorded is None or self.rebuilt is None:
            return None
        return self.rebuilt - self.recorded

    @property
    def same(self) -> bool:
        delta = self.delta
        if delta is None or math.isnan(delta):
            return bool(
                self.recorded is not None
                and self.rebuilt is not None
                and math.isnan(self.recorded)
                and math.isnan(self.rebuilt)
            )
        return abs(delta) <= TOLERANCE


@dataclass(frozen=True)
class EnvDifference:
    name: str  # env.torch, env.threads, …
    recorded: str
    now: str


@dataclass(frozen=True)
class Verdict:
    """The rebuild's outcome: the figures side by side, the environment's differences."""

    rows: tuple[MetricRow, ...]
    environment: tuple[EnvDifference, ...]
    notes: tuple[str, ...] = ()  # what else differs (the split)

    @property
    def compared(self) -> tuple[MetricRow, ...]:
        return tuple(row for row in self.rows if row.delta is not None or row.same)

    @property
    def identical(self) -> bool:
        return bool(self.compared) and all(row.same for row in self.compared) and not self.notes

    @property
    def word(self) -> str:
        return "identical" if self.identical else "different"

    def lines(self) -> list[str]:
        """The report: each figure recorded / rebuilt / delta, then the verdict and, when
        different, every figure off by more than the tolerance and every environment
        difference."""
        out = [f"{'metric':34s} {'recorded':>12s} {'rebuilt':>12s} {'delta':>12s}"]
        for row in self.rows:
            out.append(
                f"{row.name:34s} {_figure(row.recorded)} {_figure(row.rebuilt)} "
                f"{_figure(row.delta, signed=True)}{'' if row.same else '  ≠'}"
            )
        out.append(f"verdict: {self.word} (tolerance {TOLERANCE:g})")
        if self.identical:
            return out
        if not self.compared:
            out.append("  no test figure recorded on both sides to compare")
        for row in self.compared:
            if not row.same:
                out.append(f"  {row.name}: {row.recorded!r} → {row.rebuilt!r} ({row.delta:+.3g})")
        out.extend(f"  {note}" for note in self.notes)
        if self.environment:
            out.append("environment differences (recorded → now):")
            out.extend(f"  {d.name}: {d.recorded} → {d.now}" for d in self.environment)
        else:
            out.append("no environment difference seen between the training and now")
        return out


def _figure(value: float | None, signed: bool = False) -> str:
    if value is None:
        return f"{'—':>12s}"
    return f"{value:+12.6f}" if signed else f"{value:12.6f}"


def compare_metrics(
    recorded: Mapping[str, float], rebuilt: Mapping[str, float]
) -> tuple[MetricRow, ...]:
    """The candidate's test figures (`test/…`, `slice/…`) side by side; the production
    model's and baselines' figures of the run are not the version's and are left out."""
    others = (tag.PRODUCTION_PREFIX, tag.BASELINE_PREFIX)

    def own(name: str) -> bool:
        if not name.startswith((tag.TEST, tag.SLICE)):
            return False
        return not name.split("/", 1)[1].startswith(others)

    names = sorted({n for n in recorded if own(n)} | {n for n in rebuilt if own(n)})
    return tuple(MetricRow(n, recorded.get(n), rebuilt.get(n)) for n in names)


def environment_differences(
    recorded: Mapping[str, str], now: Mapping[str, str]
) -> tuple[EnvDifference, ...]:
    """Every `env.*` entry whose value differs (case aside); one known on one side only is
    a difference too (`not recorded`)."""
    names = sorted(n for n in {*recorded, *now} if n.startswith(ENV_PREFIX))
    out = []
    for name in names:
        before, after = recorded.get(name, NOT_RECORDED), now.get(name, NOT_RECORDED)
        if before.lower() != after.lower():
            out.append(EnvDifference(name, before, after))
    return tuple(out)


def verdict(
    recorded: Mapping[str, float],
    rebuilt: Mapping[str, float],
    recorded_env: Mapping[str, str],
    env_now: Mapping[str, str],
    notes: tuple[str, ...] = (),
) -> Verdict:
    """The verdict on a rebuild: its figures against the recorded ones, the environments."""
    return Verdict(
        compare_metrics(recorded, rebuilt),
        environment_differences(recorded_env, env_now),
        notes,
    )
