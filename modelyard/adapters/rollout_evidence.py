"""The live evidence a rollout verdict weighs (`modelyard.rollout.Evidence`), read from the
prediction log and feedback in the platform database since the rollout started.

- Traffic per version: its rows in the window that answered a client (role None/"served") or
  failed ("error"); in shadow, the challenger's are its shadow scores and failures. The p95
  latency is over the answers (and shadow scores), not the failures.
- Canary quality: each version's answers that got feedback (the latest label per prediction),
  right or wrong: two independent samples.
- Shadow quality: the champion's labelled answers paired, by request id, with the challenger's
  score of the same request. A challenger that failed on the text counts as wrong (nobody would
  have got an answer); a request whose copy was dropped from the shadow queue has no pair. The
  per-version `Labelled` figures are the pairs' margins.
- The order the looks need (`Evidence.pair_outcomes`, `Evidence.answer_outcomes`): each labelled
  outcome is placed when it became complete, the later of its rows' times and its FIRST
  feedback's (a corrected label keeps its place; the latest label is its truth), ties by the
  answer's id. Whatever is read later (a label given, a shadow score written, after `now`) comes
  after everything read now, so a look's prefix never changes (short of a row committed with a
  time already passed, a race of milliseconds). The counts are those outcomes' totals.
- Shadow agreement: every pair (labelled or not) where the challenger scored; drift: the
  monitor's class-mix test (PSI of the predicted classes, `monitor.class_mix_max_psi`) on the
  challenger's predictions against the true labels of the same requests, once there are
  `monitor.min_predictions` labelled pairs (against the champion's answers it would punish a
  challenger for being right where the champion is wrong). The monitor's confidence test (KS
  at large n) is left out: two models' confidences differ by calibration alone, which is not a
  reason to abort.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelyard.config import MonitorParams
from modelyard.monitoring.drift import class_mix_drift
from modelyard.rollout import Evidence, Labelled, Paired, VersionTraffic
from modelyard.store.roles import ERROR, SERVED, SHADOW
from modelyard.store.rollouts import Rollout


@dataclass(frozen=True)
class LogRow:
    """One prediction row of the window, with the true label its feedback gave (if any)."""

    id: str
    version: str
    role: str  # served (None read as served), shadow or error
    label: str
    latency_ms: float
    request_id: str | None
    truth: str | None = None
    created_at: datetime | None = None
    labelled_at: datetime | None = None  # its first feedback's time


def read_evidence(
    engine_or_url: Any, rollout: Rollout, now: datetime, monitor: MonitorParams | None = None
) -> Evidence:
    """The evidence on `rollout` from its start up to `now` (an engine, or a database URL whose
    schema is migrated first)."""
    from modelyard.store.db import engine_for

    engine = engine_for(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with engine.connect() as connection:
            rows = read_rows(connection, rollout, now)
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()
    return evidence_from(rows, rollout, now, monitor or MonitorParams())


def read_rows(connection: Any, rollout: Rollout, now: datetime) -> list[LogRow]:
    """The rollout's versions' prediction rows in the window, each with its latest feedback."""
    from sqlalchemy import select

    from modelyard.store.models import Feedback, Prediction

    versions = [v for v in (rollout.champion, rollout.challenger) if v is not None]
    window = (
        Prediction.model == rollout.model,
        Prediction.version.in_(versions),
        Prediction.created_at >= rollout.started_at,
        Prediction.created_at <= now,
    )
    rows = connection.execute(
        select(
            Prediction.id,
            Prediction.version,
            Prediction.role,
            Prediction.label,
            Prediction.latency_ms,
            Prediction.request_id,
            Prediction.created_at,
        ).where(*window)
    ).all()
    labels = connection.execute(
        select(Feedback.prediction_id, Feedback.label, Feedback.created_at)
        .join(Prediction, Prediction.id == Feedback.prediction_id)
        .where(*window, Feedback.created_at <= now)
        .order_by(Feedback.created_at, Feedback.id)
    ).all()
    truth = {id: label for id, label, _ in labels}  # in time order: the latest label wins
    first: dict[str, datetime] = {}
    for id, _, at in labels:
        first.setdefault(id, at)
    return [
        LogRow(id, version, role or SERVED, label, ms, request, truth.get(id), at, first.get(id))
        for id, version, role, label, ms, request, at in rows
    ]


def evidence_from(
    rows: list[LogRow], rollout: Rollout, now: datetime, monitor: MonitorParams
) -> Evidence:
    """The evidence the window's rows make (no I/O: see the module docstring for the rules)."""
    champion = [r for r in rows if r.version == rollout.champion and r.role in (SERVED, ERROR)]
    challenger_roles = (SHADOW, ERROR) if rollout.strategy == "shadow" else (SERVED, ERROR)
    challenger = [r for r in rows if r.version == rollout.challenger and r.role in challenger_roles]
    traffic = (_traffic(champion), _traffic(challenger))
    if rollout.strategy != "shadow":
        answers = _answer_outcomes(champion, challenger)
        return Evidence(
            rollout.strategy,
            rollout.started_at,
            now,
            *traffic,
            _labelled(answers, challenger=False),
            _labelled(answers, challenger=True),
            None,
            None,
            answer_outcomes=answers,
        )
    pairs = _pairs(champion, challenger)
    ordered = _pair_outcomes(pairs)
    paired = _paired(ordered)
    return Evidence(
        rollout.strategy,
        rollout.started_at,
        now,
        *traffic,
        Labelled(paired.both_right + paired.only_champion, paired.total),
        Labelled(paired.both_right + paired.only_challenger, paired.total),
        paired,
        _agreement(pairs),
        _drift_alarms(pairs, monitor),
        pair_outcomes=ordered,
    )


def _completed(*rows: LogRow) -> tuple[Any, ...]:
    """Sort key: when the outcome of these rows (the first an answer) became complete, the
    later of their times and the answer's first label, then the answer's id."""
    times = [t for r in rows for t in (r.created_at, r.labelled_at) if t is not None]
    return (1, max(times), rows[0].id) if times else (0, rows[0].id)


def _traffic(rows: list[LogRow]) -> VersionTraffic:
    import numpy as np

    errors = sum(r.role == ERROR for r in rows)
    latencies = [r.latency_ms for r in rows if r.role != ERROR]
    p95 = float(np.percentile(latencies, 95)) if latencies else None
    return VersionTraffic(len(rows), errors, p95)


def _answer_outcomes(
    champion: Iterable[LogRow], challenger: Iterable[LogRow]
) -> tuple[tuple[bool, bool], ...]:
    """(the challenger's, right) of every labelled answer, in the order it became labelled."""
    judged = [
        (r, by_challenger)
        for rows, by_challenger in ((champion, False), (challenger, True))
        for r in rows
        if r.truth is not None and r.role != ERROR
    ]
    judged.sort(key=lambda pair: _completed(pair[0]))
    return tuple((by_challenger, r.label == r.truth) for r, by_challenger in judged)


def _labelled(answers: tuple[tuple[bool, bool], ...], challenger: bool) -> Labelled:
    mine = [right for by_challenger, right in answers if by_challenger == challenger]
    return Labelled(sum(mine), len(mine))


def _pairs(champion: list[LogRow], challenger: list[LogRow]) -> list[tuple[LogRow, LogRow]]:
    """The champion's answers with the challenger's row of the same request."""
    by_request = {r.request_id: r for r in challenger if r.request_id is not None}
    return [
        (answer, by_request[answer.id])
        for answer in champion
        if answer.role == SERVED and answer.id in by_request
    ]


def _pair_outcomes(pairs: list[tuple[LogRow, LogRow]]) -> tuple[tuple[bool, bool], ...]:
    """(champion right, challenger right) of every labelled pair, in the order it became
    complete (a challenger that failed on the text is wrong)."""
    labelled = sorted(
        ((answer, copy) for answer, copy in pairs if answer.truth is not None),
        key=lambda pair: _completed(*pair),
    )
    return tuple(
        (answer.label == answer.truth, copy.role == SHADOW and copy.label == answer.truth)
        for answer, copy in labelled
    )


def _paired(ordered: tuple[tuple[bool, bool], ...]) -> Paired:
    counts = Counter(ordered)
    return Paired(
        counts[True, True], counts[True, False], counts[False, True], counts[False, False]
    )


def _agreement(pairs: list[tuple[LogRow, LogRow]]) -> Labelled:
    scored = [(a, c) for a, c in pairs if c.role == SHADOW]
    return Labelled(sum(a.label == c.label for a, c in scored), len(scored))


def _drift_alarms(pairs: list[tuple[LogRow, LogRow]], monitor: MonitorParams) -> tuple[str, ...]:
    # Against the truth of the same requests, not the champion's answers: a challenger better
    # than the champion answers differently from it exactly where it is wrong (seen: a champion
    # near chance on a new domain and a challenger trained on it, PSI 1.9 between the two).
    scored = [(a.truth, c.label) for a, c in pairs if c.role == SHADOW and a.truth is not None]
    if len(scored) < monitor.min_predictions:
        return ()
    labels = sorted({label for pair in scored for label in pair})
    test = class_mix_drift(
        labels, [a for a, _ in scored], [c for _, c in scored], monitor.class_mix_max_psi
    )
    return (f"{test.name} ({test.detail})",) if test.alarm else ()
