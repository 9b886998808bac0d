"""Differentially private fine-tuning (DP-SGD), top to bottom, with Opacus.

What differs from `loop.train_classifier`, and why:
- Batches are Poisson-sampled (each example joins each step independently with probability
  batch_size / N). The privacy accounting assumes exactly that, so no length grouping, no
  gradient accumulation, no checkpoint/resume mid-epoch (a resumed sampler would not be the
  one accounted for).
- Each example's gradient is clipped to `max_grad_norm` before they are summed, and Gaussian
  noise of scale `noise_multiplier * max_grad_norm` is added to the sum: no single example can
  move a step by more than the clip, and the noise hides whether it was there at all. Opacus
  picks the noise multiplier so that `epochs` epochs spend at most `target_epsilon` at
  `target_delta` (RDP accountant), and reports what was actually spent.
- No best-epoch selection: picking the best of several epochs on validation data is itself a
  data-dependent choice the accountant does not see; the last epoch's weights are kept.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.config import TrainParams
from modelyard.training.loop import (
    Encoded,
    EpochCallback,
    StepCallback,
    TrainResult,
    encode,
    epoch_record,
    evaluate,
    linear_schedule,
    pad,
    prepare_process,
    record_throughput,
    step_values,
)


class _Indices:
    """A map-style dataset of row numbers, as 1-element tensors: Opacus derives the shape of
    an empty Poisson batch from an item, and the padding happens in the collate function."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[Any]:
        import torch

        return (torch.tensor(index),)


def _collate(tokenizer: Any, data: Encoded, items: list[tuple[Any]]) -> dict[str, Any]:
    rows = [int(item[0]) for item in items]
    return {**pad(tokenizer, data, rows), "labels": data.targets[rows]}


def _quiet_warnings() -> None:
    import warnings

    # Frozen embeddings mean no input of the first trainable layer needs a gradient: torch's
    # note about full backward hooks then fires on every step and says nothing wrong. Opacus's
    # "secure RNG off": its cryptographic RNG (torchcsprng) is not installed; the noise comes
    # from torch's generator, seeded for reproducibility.
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    warnings.filterwarnings("ignore", message="Secure RNG turned off")
    # "Optimal order is the largest alpha": the ε reported is still a valid upper bound, only
    # perhaps looser than a wider search of RDP orders would give.
    warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")


@dataclass(frozen=True)
class _Private:
    """The model, optimizer and loader as Opacus made them private, and its accountant."""

    model: Any  # a GradSampleModule around the model: per-example gradients
    optimizer: Any  # a DPOptimizer: clips each example's gradient, adds the noise
    loader: Any  # Poisson-sampled batches
    engine: Any


def _make_private(
    model: Any, tokenizer: Any, data: Encoded, params: TrainParams, device: str
) -> _Private:
    """Poisson batches, per-example clipping and the noise that spends at most the ε budget
    over `params.epochs` epochs."""
    import torch
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader

    dp = params.privacy
    loader = DataLoader(
        _Indices(len(data.input_ids)),
        batch_size=params.batch_size,
        collate_fn=functools.partial(_collate, tokenizer, data),
        generator=torch.Generator().manual_seed(params.seed),
    )
    trainable = [w for w in model.parameters() if w.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=params.learning_rate, weight_decay=params.weight_decay
    )
    engine = PrivacyEngine(accountant="rdp")
    private_model, optimizer, loader = engine.make_private_with_epsilon(
        module=model,
        optimizer=optimizer,
        data_loader=loader,
        epochs=params.epochs,
        target_epsilon=dp.target_epsilon,
        target_delta=dp.target_delta,
        max_grad_norm=dp.max_grad_norm,
        noise_generator=torch.Generator(device=device).manual_seed(params.seed),
    )
    return _Private(private_model, optimizer, loader, engine)


def _private_step(private: _Private, scheduler: Any, batch: dict[str, Any]) -> float:
    """One DP-SGD step on a Poisson batch; returns its loss."""
    loss = private.model(**batch).loss
    loss.backward()
    # DPOptimizer.step clips each example's gradient, sums, adds the noise, averages.
    private.optimizer.step()
    scheduler.step()
    private.optimizer.zero_grad(set_to_none=True)
    return float(loss.item())


def _private_epoch(
    private: _Private, scheduler: Any, device: str, steps_before: int, on_step: StepCallback | None
) -> tuple[list[float], int]:
    """The epoch's steps; returns their losses (one per step) and the texts they saw."""
    private.model.train()
    losses: list[float] = []
    samples = 0
    for batch in private.loader:
        if not isinstance(batch, dict):  # Poisson sampling drew nobody this step
            continue
        batch = {key: value.to(device) for key, value in batch.items()}
        losses.append(_private_step(private, scheduler, batch))
        samples += len(batch["labels"])
        if on_step is not None:
            on_step(steps_before + len(losses), step_values(losses[-1], scheduler))
    return losses, samples


def _release(model: Any, private: _Private) -> None:
    """The model as a plain one again, for inference and saving: no hooks, nothing frozen."""
    private.model.remove_hooks()
    for weight in model.parameters():
        weight.requires_grad_(True)
        weight.grad_sample = None
    model.eval()


def train_private(
    model: Any,
    tokenizer: Any,
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    val_texts: Sequence[str],
    val_labels: Sequence[int],
    params: TrainParams,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Fine-tune `model` in place under (ε, δ)-differential privacy; `result.epsilon` is the ε
    spent at `params.privacy.target_delta`."""
    _quiet_warnings()
    dp = params.privacy
    device = prepare_process(params)
    if dp.freeze_embeddings:
        for weight in model.base_model.embeddings.parameters():
            weight.requires_grad_(False)
    model.to(device).train()
    data = encode(tokenizer, train_texts, train_labels)
    private = _make_private(model, tokenizer, data, params, device)
    scheduler = linear_schedule(private.optimizer, params, len(private.loader) * params.epochs)

    result = TrainResult(device=device, precision="fp32")
    steps, samples, started = 0, 0, time.perf_counter()
    for epoch in range(1, params.epochs + 1):
        losses, seen = _private_epoch(private, scheduler, device, steps, on_step)
        steps, samples = steps + len(losses), samples + seen
        scores = evaluate(model, tokenizer, device, val_texts, val_labels, params.eval_batch_size)
        record = {
            **epoch_record(epoch, losses, scores),
            "dp_epsilon": float(private.engine.get_epsilon(dp.target_delta)),
        }
        result.history.append(record)
        if on_epoch is not None:
            on_epoch(epoch, record)

    _release(model, private)
    result.best_epoch = params.epochs
    record_throughput(result, steps, samples, time.perf_counter() - started, device)
    result.epsilon = float(private.engine.get_epsilon(dp.target_delta))
    result.delta = dp.target_delta
    result.noise_multiplier = float(private.optimizer.noise_multiplier)
    return result
