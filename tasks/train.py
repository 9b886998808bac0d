from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelyard.config import Params
from modelyard.data.dataset import Splits
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.training.cost import ComputeMeter, attempt_metrics, run_attempts, total
from modelyard.training.fit import Trained, fit
from modelyard.training.loop import epoch_metrics
from modelyard.inference import pick_device

_STEP_LOG_EVERY = 10
# Interim cost figures, every 30 s and at each checkpoint step (logged just before the
# checkpoint is written): what a killed attempt leaves behind for the run's total.
_COST_LOG_EVERY_S = 30.0


@task(name="train-candidate", cache_policy=NO_CACHE)
def train_candidate(
    splits: Splits, params: Params, registry: MlflowRegistry, run_id: str, out_dir: Path,
    checkpoints: Path | None = None,
) -> Trained:
    """Fine-tune with per-step and per-epoch metrics in MLflow; resumes from `checkpoints`.
    The attempt's compute cost is logged as it goes and at the end, next to the run's total
    over all its attempts."""
    logger = get_run_logger()
    pending: list[tuple[int, dict[str, float]]] = []
    attempt = len(run_attempts(registry, run_id)) + 1
    meter = ComputeMeter(params.cost, pick_device(), params.train.nproc).start()
    per_step = params.train.batch_size * params.train.grad_accumulation * params.train.nproc
    steps_done, last_cost_log = 0, time.monotonic()
    registry.log_metrics(run_id, attempt_metrics(meter.snapshot(0)), step=attempt)

    per_epoch = -(-len(splits.train) // params.train.batch_size)
    total_steps = params.train.max_steps or params.train.epochs * per_epoch
    every = max(total_steps // 10, 1)

    def on_step(step: int, values: dict[str, float]) -> None:
        nonlocal steps_done, last_cost_log
        steps_done += 1
        checkpointed = bool(params.train.checkpoint_every) and \
            step % params.train.checkpoint_every == 0
        if checkpointed or time.monotonic() - last_cost_log > _COST_LOG_EVERY_S:
            last_cost_log = time.monotonic()
            registry.log_metrics(run_id, attempt_metrics(meter.snapshot(steps_done * per_step)),
                                 step=attempt)
        if step % every == 0 or step == total_steps:
            logger.info("step %d/%d: loss %.4f, lr %.2e", step, total_steps, values["train_loss"],
                        values["learning_rate"])
        # Batch the per-step metrics: one MLflow write every few steps, not one per step.
        pending.append((step, values))
        if len(pending) >= _STEP_LOG_EVERY:
            flush()

    def flush() -> None:
        registry.log_metric_steps(run_id, pending)
        pending.clear()

    def on_epoch(epoch: int, record: dict[str, float]) -> None:
        flush()
        registry.log_metrics(run_id, epoch_metrics(record), step=epoch)
        logger.info("epoch %d: loss %.4f, val accuracy %.4f, val macro-F1 %.4f", epoch,
                    record["train_loss"], record["val_accuracy"], record["val_macro_f1"])

    try:
        if params.train.nproc > 1:
            trained = _train_distributed(splits, params, registry, run_id, out_dir, checkpoints)
        else:
            trained = fit(splits, params, out_dir, on_step=on_step, on_epoch=on_epoch,
                          checkpoints=checkpoints)
            flush()
    except BaseException:
        # A failed attempt cost something too: its figures stay in the run, and the retry that
        # resumes the run counts them in the total.
        registry.log_metrics(run_id, attempt_metrics(meter.stop(steps_done * per_step)),
                             step=attempt)
        raise
    result = trained.result
    steps_done = max(steps_done, result.steps - (result.resumed_from_step or 0))
    figures = meter.stop(steps_done * per_step)
    figures = replace(figures, samples_per_second=result.samples_per_second or
                      figures.samples_per_second)
    registry.log_metrics(run_id, attempt_metrics(figures), step=attempt)
    totals = total(run_attempts(registry, run_id))
    registry.log_metrics(run_id, {**figures.metrics(),
                                  **{f"total_compute_{k}": v for k, v in totals.items()}})
    registry.set_run_tags(run_id, figures.tags())
    trained = replace(trained, cost=figures, cost_total=totals)
    logger.info("compute, attempt %d: %s; all %d attempts: %.4f device-h, %.4f %s", attempt,
                figures.summary(), int(totals["attempts"]), totals["device_hours"],
                totals["cost"], figures.currency)
    if result.epsilon is not None:
        registry.log_metrics(run_id, {"dp_epsilon": result.epsilon, "dp_delta": result.delta,
                                      "dp_noise_multiplier": result.noise_multiplier})
        logger.info("differentially private: ε = %.3f at δ = %g (noise multiplier %.3f)",
                    result.epsilon, result.delta, result.noise_multiplier)
    if result.resumed_from_step is not None:
        logger.info("resumed from the checkpoint at step %d", result.resumed_from_step)
    weights = sum(f.stat().st_size for f in out_dir.glob("*.safetensors"))
    registry.log_metrics(run_id, {
        "train_seconds": result.seconds, "samples_per_second": result.samples_per_second,
        "best_epoch": result.best_epoch, "parameters": trained.parameters,
        "model_size_mb": weights / 2**20, "peak_memory_mb": result.peak_memory_mb,
        "train_steps": result.steps, "stopped_early": float(result.stopped_early),
        "resumed_from_step": float(result.resumed_from_step or 0),
    })
    registry.set_run_tags(run_id, {"modelyard.device": result.device,
                                   "modelyard.precision": result.precision})
    logger.info("trained %d steps in %.1fs on %s/%s (%.0f samples/s, peak %.0f MiB); best epoch "
                "%d%s", result.steps, result.seconds, result.device, result.precision,
                result.samples_per_second, result.peak_memory_mb, result.best_epoch,
                " (stopped early)" if result.stopped_early else "")
    return trained


def _train_distributed(splits: Splits, params: Params, registry: MlflowRegistry, run_id: str,
                       out_dir: Path, checkpoints: Path | None) -> Trained:
    """torchrun with `train.nproc` processes on the same splits; rank 0 logs to this MLflow run."""
    import yaml

    from modelyard.training.distributed import launch
    from modelyard.training.loop import TrainResult

    work = out_dir.parent / "distributed"
    work.mkdir(parents=True, exist_ok=True)
    for part in ("train", "val", "test"):
        getattr(splits, part).to_parquet(work / f"{part}.parquet", index=False)
    (work / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    get_run_logger().info("launching torchrun with %d processes", params.train.nproc)
    report = launch(work, work / "params.yaml", out_dir, params.train.nproc,
                    registry.tracking_uri, run_id, checkpoints)
    parameters = int(report.pop("parameters"))
    return Trained(out_dir, TrainResult(**report), parameters)
