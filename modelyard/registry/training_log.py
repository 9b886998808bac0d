"""A training attempt, tracked in its MLflow run as it goes: per-step metrics in batches, the
per-epoch figures, the attempt's compute cost (interim and final) next to the run's total over
every attempt, the privacy budget spent, and the result's figures at the end."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from modelyard import tags as tag
from modelyard.config import Params
from modelyard.data.dataset import Splits
from modelyard.inference import pick_device
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.registry.tracking import Log
from modelyard.training.cost import ComputeCost, ComputeMeter, total
from modelyard.training.fit import Trained, fit, fit_distributed
from modelyard.training.loop import TrainResult

STEP_LOG_EVERY = 10
# Interim cost figures, every 30 s and at each checkpoint step (logged just before the
# checkpoint is written): what a killed attempt leaves behind for the run's total.
COST_LOG_EVERY_S = 30.0
# What each attempt's record keeps (the additive figures and its throughput).
ATTEMPT_KEYS = ("seconds", "device_hours", "energy_kwh", "co2_kg", "cost", "samples_per_second")


def attempt_path(number: int) -> str:
    return f"{tag.COMPUTE_ATTEMPTS_DIR}/attempt-{number:03d}.json"


def recorded_attempts(registry: MlflowRegistry, run_id: str) -> list[dict[str, float]]:
    """Every training attempt's latest figures recorded in the run, in order (a killed one's
    last interim figures included): one small JSON artifact per attempt, rewritten as it goes,
    so the run's metrics carry each figure once instead of one point per attempt."""
    import json
    import tempfile

    paths = sorted(registry.list_artifacts(run_id, tag.COMPUTE_ATTEMPTS_DIR))
    attempts = []
    with tempfile.TemporaryDirectory() as scratch:
        for path in paths:
            record = json.loads(registry.download_artifact(run_id, path, Path(scratch)).read_text())
            attempts.append({key: float(record.get(key, 0.0)) for key in ATTEMPT_KEYS})
    return attempts


def train_tracked(
    splits: Splits,
    params: Params,
    registry: MlflowRegistry,
    run_id: str,
    out_dir: Path,
    checkpoints: Path | None,
    log: Log,
    rendezvous: str | None = None,
) -> Trained:
    """Fine-tune (in `train.nproc` processes on each of `train.nnodes` machines meeting at
    `rendezvous` when either is > 1), tracking the attempt in `run_id`; resumes from
    `checkpoints`. A failed attempt's cost stays in the run too."""
    tracker = TrainingLog(registry, run_id, params, log, len(splits.train))
    try:
        if params.train.nproc > 1 or params.train.nnodes > 1:
            log.info(
                "launching torchrun with %d processes on each of %d node(s)",
                params.train.nproc,
                params.train.nnodes,
            )
            trained = fit_distributed(
                splits.save(out_dir.parent / "distributed"),
                params,
                out_dir,
                registry.tracking_uri,
                run_id,
                checkpoints,
                rendezvous,
            )
        else:
            trained = fit(
                splits,
                params,
                out_dir,
                on_step=tracker.on_step,
                on_epoch=tracker.on_epoch,
                checkpoints=checkpoints,
            )
            tracker.flush()
    except BaseException:
        # The retry that resumes the run counts this attempt's figures in the total.
        tracker.failed()
        raise
    return tracker.finished(trained, out_dir)


@dataclass
class TrainingLog:
    """The callbacks `fit` calls, writing to one MLflow run; `finished` writes the rest."""

    registry: MlflowRegistry
    run_id: str
    params: Params
    log: Log
    train_rows: int
    attempt: int = 0
    steps_done: int = 0
    pending: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    meter: ComputeMeter = field(init=False)
    last_cost_log: float = field(init=False)

    def __post_init__(self) -> None:
        train = self.params.train
        self.attempt = len(recorded_attempts(self.registry, self.run_id)) + 1
        self.meter = ComputeMeter(
            self.params.cost, pick_device(), train.nproc * train.nnodes
        ).start()
        self.last_cost_log = time.monotonic()
        self._log_attempt(self.meter.snapshot(0))

    @property
    def samples_per_step(self) -> int:
        train = self.params.train
        return train.batch_size * train.grad_accumulation * train.nproc * train.nnodes

    @property
    def total_steps(self) -> int:
        train = self.params.train
        return train.max_steps or train.epochs * -(-self.train_rows // train.batch_size)

    def on_step(self, step: int, values: dict[str, float]) -> None:
        self.steps_done += 1
        every = self.params.train.checkpoint_every
        if (
            every and step % every == 0
        ) or time.monotonic() - self.last_cost_log > COST_LOG_EVERY_S:
            self.last_cost_log = time.monotonic()
            self._log_attempt(self.meter.snapshot(self.steps_done * self.samples_per_step))
        if step % max(self.total_steps // 10, 1) == 0 or step == self.total_steps:
            self.log.info(
                "step %d/%d: loss %.4f, lr %.2e",
                step,
                self.total_steps,
                values["train_loss"],
                values["learning_rate"],
            )
        # One MLflow write every few steps, not one per step.
        self.pending.append((step, values))
        if len(self.pending) >= STEP_LOG_EVERY:
            self.flush()

    def on_epoch(self, epoch: int, record: dict[str, float]) -> None:
        self.flush()
        self.registry.log_metrics(self.run_id, tag.epoch_metrics(record), step=epoch)
        self.log.info(
            "epoch %d: loss %.4f, val accuracy %.4f, val macro-F1 %.4f",
            epoch,
            record["train_loss"],
            record["val_accuracy"],
            record["val_macro_f1"],
        )

    def flush(self) -> None:
        self.registry.log_metric_steps(
            self.run_id, [(step, tag.step_metrics(values)) for step, values in self.pending]
        )
        self.pending.clear()

    def failed(self) -> None:
        self._log_attempt(self.meter.stop(self.steps_done * self.samples_per_step))

    def finished(self, trained: Trained, out_dir: Path) -> Trained:
        """The attempt's final cost next to the run's total, and the result's figures."""
        result = trained.result
        steps = max(self.steps_done, result.steps - (result.resumed_from_step or 0))
        figures = self.meter.stop(steps * self.samples_per_step)
        figures = replace(
            figures, samples_per_second=result.samples_per_second or figures.samples_per_second
        )
        self._log_attempt(figures)
        totals = total(recorded_attempts(self.registry, self.run_id))
        self.registry.log_metrics(
            self.run_id,
            {
                **figures.metrics(prefix=tag.COMPUTE),
                **{f"{tag.COMPUTE_TOTAL}{k}": v for k, v in totals.items()},
            },
        )
        self.registry.set_run_tags(self.run_id, figures.tags())
        self.log.info(
            "compute, attempt %d: %s; all %d attempts: %.4f device-h, %.4f %s",
            self.attempt,
            figures.summary(),
            int(totals["attempts"]),
            totals["device_hours"],
            totals["cost"],
            figures.currency,
        )
        self._log_result(result, trained.parameters)
        return replace(trained, cost=figures, cost_total=totals)

    def _log_attempt(self, figures: ComputeCost) -> None:
        values = figures.metrics(prefix="")
        self.registry.log_dict(
            self.run_id,
            {"attempt": self.attempt, **{key: values[key] for key in ATTEMPT_KEYS}},
            attempt_path(self.attempt),
        )

    def _log_result(self, result: TrainResult, parameters: int) -> None:
        """The result's figures (the model's size is the evaluation's `compute/model_size_mb`)."""
        if result.epsilon is not None:
            self.registry.log_metrics(
                self.run_id,
                {
                    tag.DP_EPSILON: result.epsilon,
                    tag.DP_DELTA: result.delta or 0.0,
                    tag.DP_NOISE_MULTIPLIER: result.noise_multiplier or 0.0,
                },
            )
            self.log.info(
                "differentially private: ε = %.3f at δ = %g (noise multiplier %.3f)",
                result.epsilon,
                result.delta,
                result.noise_multiplier,
            )
        if result.resumed_from_step is not None:
            self.log.info("resumed from the checkpoint at step %d", result.resumed_from_step)
        self.registry.log_metrics(
            self.run_id,
            {
                f"{tag.TRAIN}seconds": result.seconds,
                f"{tag.TRAIN}samples_per_second": result.samples_per_second,
                tag.BEST_EPOCH: result.best_epoch,
                f"{tag.TRAIN}parameters": parameters,
                f"{tag.TRAIN}peak_memory_mb": result.peak_memory_mb,
                tag.TRAIN_STEPS: result.steps,
                f"{tag.TRAIN}stopped_early": float(result.stopped_early),
                tag.RESUMED_FROM_STEP: float(result.resumed_from_step or 0),
            },
        )
        self.registry.set_run_tags(
            self.run_id, {tag.RUN_DEVICE: result.device, tag.RUN_PRECISION: result.precision}
        )
        self.log.info(
            "trained %d steps in %.1fs on %s/%s (%.0f samples/s, peak %.0f MiB); best epoch %d%s",
            result.steps,
            result.seconds,
            result.device,
            result.precision,
            result.samples_per_second,
            result.peak_memory_mb,
            result.best_epoch,
            " (stopped early)" if result.stopped_early else "",
        )
