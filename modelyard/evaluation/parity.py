"""The parity check of a model's faster runtimes: each exported variant (ONNX fp32, ONNX int8,
half precision on CUDA) against the PyTorch model the gate judged, on the same test split.

A variant may answer in the reference's place only if it predicts the same class for at least
`runtime.min_agreement` of the texts and loses at most `runtime.max_metric_drop` of accuracy and
of macro-F1; of those that pass, the fastest (texts/s at the largest batch measured) is chosen.
The decision (`judge`, `choose`) is a pure function of the predictions and the timings;
`check_runtimes` measures them on this machine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelyard.config import RuntimeParams
from modelyard.inference import runtime as rt

# Batch sizes the texts/s are measured at: a lone request, a full server batch.
BATCH_SIZES = (1, 32)
# Texts timed per round at each batch size (batch 1: each its own forward pass), and rounds:
# enough for a stable rate, few enough to keep the check short on a slow machine.
SPEED_TEXTS = {1: 32, 32: 256}
ROUNDS = 3


@dataclass(frozen=True)
class Measured:
    """What one runtime did on the test split: its predicted class per text, its speed on this
    machine, its size on disk."""

    runtime: str
    predictions: list[str]
    texts_per_s: dict[int, float] = field(default_factory=dict)
    size_mb: float = 0.0
    error: str | None = None  # it could not be exported, loaded or run


@dataclass(frozen=True)
class Verdict:
    runtime: str
    device: str
    passed: bool
    reasons: list[str]
    agreement: float = 0.0
    accuracy_delta: float = 0.0
    macro_f1_delta: float = 0.0
    texts_per_s: dict[int, float] = field(default_factory=dict)
    size_mb: float = 0.0

    def figures(self) -> dict[str, float]:
        """The figures logged to MLflow (`modelyard.tags.runtime_metrics`)."""
        out = {
            "passed": float(self.passed),
            "agreement": self.agreement,
            "accuracy_delta": self.accuracy_delta,
            "macro_f1_delta": self.macro_f1_delta,
            "size_mb": self.size_mb,
        }
        out.update({f"texts_per_s_batch{b}": v for b, v in self.texts_per_s.items()})
        return out

    def line(self) -> str:
        speed = ", ".join(f"{v:.0f} texts/s at batch {b}" for b, v in self.texts_per_s.items())
        return (
            f"{self.device}/{self.runtime}: {'pass' if self.passed else 'FAIL'} "
            f"(agreement {self.agreement:.4f}, accuracy {self.accuracy_delta:+.4f}, "
            f"macro-F1 {self.macro_f1_delta:+.4f}; {speed or 'not timed'}; "
            f"{self.size_mb:.1f} MB){'' if self.passed else ': ' + '; '.join(self.reasons)}"
        )


def accuracy(predictions: Sequence[str], truth: Sequence[str]) -> float:
    return sum(p == t for p, t in zip(predictions, truth, strict=True)) / max(len(truth), 1)


def macro_f1(predictions: Sequence[str], truth: Sequence[str], labels: Sequence[str]) -> float:
    scores = []
    for label in labels:
        tp = sum(p == label == t for p, t in zip(predictions, truth, strict=True))
        predicted, actual = predictions.count(label), list(truth).count(label)
        scores.append(0.0 if tp == 0 else 2 * tp / (predicted + actual))
    return sum(scores) / max(len(scores), 1)


def judge(
    reference: Measured,
    variant: Measured,
    truth: Sequence[str],
    labels: Sequence[str],
    policy: RuntimeParams,
    device: str = rt.CPU,
) -> Verdict:
    """May `variant` answer in `reference`'s place? With every figure, and the reasons when
    not."""
    if variant.error is not None:
        return Verdict(variant.runtime, device, False, [variant.error])
    agreement = accuracy(variant.predictions, reference.predictions)
    drops = {
        "accuracy": accuracy(variant.predictions, truth) - accuracy(reference.predictions, truth),
        "macro-F1": macro_f1(variant.predictions, truth, labels)
        - macro_f1(reference.predictions, truth, labels),
    }
    reasons = []
    if agreement < policy.min_agreement:
        reasons.append(
            f"agreement {agreement:.4f} with {reference.runtime} < "
            f"runtime.min_agreement {policy.min_agreement}"
        )
    for name, delta in drops.items():
        if -delta > policy.max_metric_drop:
            reasons.append(
                f"{name} drops {-delta:.4f} > runtime.max_metric_drop {policy.max_metric_drop}"
            )
    return Verdict(
        variant.runtime,
        device,
        not reasons,
        reasons,
        agreement,
        drops["accuracy"],
        drops["macro-F1"],
        dict(variant.texts_per_s),
        variant.size_mb,
    )


def choose(verdicts: Sequence[Verdict]) -> str:
    """The fastest runtime that passed (the reference, which always passes, when nothing is
    faster). Fastest over the batch sizes a server runs: the geometric mean of its speed-up
    on the reference at each batch size measured for both — a lone caller is answered at batch
    1, a loaded server at 32, and an export twice as fast for the one and 10% slower for the
    other serves better than the reference (measured on MiniLM here: ONNX 2.3x at 1, 0.91x at
    32). Without a reference's figures: the speed at the largest batch."""
    passed = [v for v in verdicts if v.passed and v.texts_per_s]
    if not passed:
        return rt.EAGER
    reference = next((v.texts_per_s for v in passed if v.runtime == rt.EAGER), None)

    def speed(verdict: Verdict) -> float:
        if reference is None:
            return verdict.texts_per_s[max(verdict.texts_per_s)]
        return speedup(verdict.texts_per_s, reference)

    # A tie goes to the reference: the same speed is no reason to answer with an export.
    return max(passed, key=lambda v: (speed(v), v.runtime == rt.EAGER)).runtime


def speedup(texts_per_s: Mapping[int, float], reference: Mapping[int, float]) -> float:
    """The geometric mean of `texts_per_s / reference` over the batch sizes both measured (0
    when they share none)."""
    ratios = [
        texts_per_s[batch] / reference[batch]
        for batch in texts_per_s
        if reference.get(batch, 0) > 0 and texts_per_s[batch] > 0
    ]
    if not ratios:
        return 0.0
    return math.exp(sum(math.log(ratio) for ratio in ratios) / len(ratios))


@dataclass(frozen=True)
class RuntimeReport:
    """Every variant's verdict, per device kind, and the runtime chosen for each kind."""

    verdicts: list[Verdict]
    chosen: dict[str, str]

    def lines(self) -> list[str]:
        chosen = ", ".join(f"{device}: {name}" for device, name in self.chosen.items())
        return [f"chosen {chosen}", *[verdict.line() for verdict in self.verdicts]]

    def to_dict(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "verdicts": [asdict(v) for v in self.verdicts]}

    def failed(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.passed]


def time_variants(
    classifiers: dict[str, Any], texts: Sequence[str], rounds: int = ROUNDS
) -> dict[str, dict[int, float]]:
    """texts/s of each classifier at each of `BATCH_SIZES`: the best of `rounds` rounds, the
    variants taking turns within a round, so that a burst of other work on the machine slows
    one round of every variant rather than all rounds of one (and decides nothing)."""
    texts = list(texts)
    samples = {b: texts[: SPEED_TEXTS[b]] for b in BATCH_SIZES}
    for classifier in classifiers.values():  # warm-up: allocation, kernel choice, thread pools
        classifier.predict(texts[: max(BATCH_SIZES)])
    speeds: dict[str, dict[int, float]] = {name: {} for name in classifiers}
    for _ in range(rounds):
        for name, classifier in classifiers.items():
            for batch, sample in samples.items():
                started = time.perf_counter()
                classifier.predict(sample, batch_size=batch)
                rate = len(sample) / max(time.perf_counter() - started, 1e-9)
                speeds[name][batch] = max(rate, speeds[name].get(batch, 0.0))
    return speeds


def check_runtimes(
    directory: Path,
    texts: Sequence[str],
    truth: Sequence[str],
    labels: Sequence[str],
    policy: RuntimeParams,
    devices: Sequence[str] = (rt.CPU,),
    drop_failed: bool = True,
) -> RuntimeReport:
    """Export `directory`'s model (into its `runtime/` folder), measure every variant on each
    device kind against that kind's `eager`, judge, choose. A variant that failed everywhere
    is deleted (it never travels with the model); the choice is written next to the exports."""
    export_error: str | None = None
    try:
        rt.export_variants(directory)
    except Exception as error:  # noqa: BLE001 - a failed export leaves the model eager
        export_error = f"export failed: {type(error).__name__}: {error}"[:500]
    verdicts: list[Verdict] = []
    chosen: dict[str, str] = {}
    for device in devices:
        kind = rt.device_kind(device)
        found = _measured(directory, rt.variants(kind), device, texts, export_error)
        judged = [judge(found[0], m, truth, labels, policy, kind) for m in found]
        verdicts += judged
        chosen[kind] = choose(judged)
    if drop_failed:  # a benchmark keeps them, to time them all
        _drop_failed(directory, verdicts)
    rt.write_choice(directory, chosen)
    return RuntimeReport(verdicts, chosen)


def _measured(
    directory: Path,
    names: Sequence[str],
    device: str,
    texts: Sequence[str],
    export_error: str | None,
) -> list[Measured]:
    """Each variant built and run on every text (its predictions), then timed (in turns)."""
    built: dict[str, Any] = {}
    failed: dict[str, str] = {}
    predictions: dict[str, list[str]] = {}
    for name in names:
        if export_error is not None and name in rt.ONNX_FILES:
            failed[name] = export_error
            continue
        try:
            built[name] = rt.build_runtime(directory, name, device)
            predictions[name] = built[name].predict(list(texts), batch_size=max(BATCH_SIZES))
        except Exception as error:  # noqa: BLE001 - reported as the variant's failure
            failed[name] = f"{type(error).__name__}: {error}"[:500]
            built.pop(name, None)
    speeds = time_variants(built, texts)
    return [
        Measured(name, [], error=failed[name])
        if name in failed
        else Measured(name, predictions[name], speeds[name], _size_mb(directory, name))
        for name in names
    ]


def _size_mb(directory: Path, name: str) -> float:
    if name in rt.ONNX_FILES:
        return (directory / rt.RUNTIME_DIR / rt.ONNX_FILES[name]).stat().st_size / 2**20
    weights = sum(f.stat().st_size for f in directory.glob("*.safetensors")) / 2**20
    return weights / 2 if name == rt.EAGER_HALF else weights


def _drop_failed(directory: Path, verdicts: Sequence[Verdict]) -> None:
    passed = {v.runtime for v in verdicts if v.passed}
    for name, file in rt.ONNX_FILES.items():
        if name not in passed:
            (directory / rt.RUNTIME_DIR / file).unlink(missing_ok=True)


def devices_here() -> list[str]:
    """The device kinds to check on this machine: the CPU always (most servers have no GPU),
    CUDA where there is one."""
    from modelyard.inference import pick_device

    return [rt.CPU, *([rt.CUDA] if pick_device() == rt.CUDA else [])]
