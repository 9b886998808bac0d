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

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelyard.config import TrainParams
from modelyard.evaluation.metrics import classification_metrics
from modelyard.training.loop import (
    EpochCallback,
    StepCallback,
    TrainResult,
    peak_memory_mb,
    seed_everything,
)
from modelyard.inference import TextClassifier, pick_device


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
    import warnings

    import torch
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader
    from transformers import get_linear_schedule_with_warmup

    # Frozen embeddings mean no input of the first trainable layer needs a gradient: torch's
    # note about full backward hooks then fires on every step and says nothing wrong. Opacus's
    # "secure RNG off": its cryptographic RNG (torchcsprng) is not installed; the noise comes
    # from torch's generator, seeded for reproducibility.
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    warnings.filterwarnings("ignore", message="Secure RNG turned off")
    # "Optimal order is the largest alpha": the ε reported is still a valid upper bound, only
    # perhaps looser than a wider search of RDP orders would give.
    warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
    dp = params.privacy
    if params.threads:
        torch.set_num_threads(params.threads)
    seed_everything(params.seed)
    device = pick_device()
    if dp.freeze_embeddings:
        for weight in model.base_model.embeddings.parameters():
            weight.requires_grad_(False)
    model.to(device).train()

    encoded = tokenizer(list(train_texts), truncation=True)["input_ids"]
    targets = torch.tensor(list(train_labels), dtype=torch.long)

    def collate(items: list[tuple[Any]]) -> dict[str, Any]:
        rows = [int(item[0]) for item in items]
        batch = tokenizer.pad({"input_ids": [encoded[i] for i in rows]}, return_tensors="pt")
        return {**batch, "labels": targets[rows]}

    loader = DataLoader(_Indices(len(encoded)), batch_size=params.batch_size,
                        collate_fn=collate,
                        generator=torch.Generator().manual_seed(params.seed))
    trainable = [w for w in model.parameters() if w.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=params.learning_rate,
                                  weight_decay=params.weight_decay)
    engine = PrivacyEngine(accountant="rdp")
    private_model, optimizer, loader = engine.make_private_with_epsilon(
        module=model, optimizer=optimizer, data_loader=loader, epochs=params.epochs,
        target_epsilon=dp.target_epsilon, target_delta=dp.target_delta,
        max_grad_norm=dp.max_grad_norm,
        noise_generator=torch.Generator(device=device).manual_seed(params.seed))
    total_steps = len(loader) * params.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(params.warmup_ratio * total_steps),
                                                total_steps)

    result = TrainResult(device=device, precision="fp32")
    step, samples, started = 0, 0, time.perf_counter()
    for epoch in range(1, params.epochs + 1):
        private_model.train()
        losses = []
        for batch in loader:
            if not isinstance(batch, dict):  # Poisson sampling drew nobody this step
                continue
            batch = {key: value.to(device) for key, value in batch.items()}
            loss = private_model(**batch).loss
            loss.backward()
            # DPOptimizer.step clips each example's gradient, sums, adds the noise, averages.
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            samples += len(batch["labels"])
            losses.append(loss.item())
            if on_step is not None:
                on_step(step, {"train_loss": loss.item(),
                               "learning_rate": scheduler.get_last_lr()[0]})
        classifier = TextClassifier(model, tokenizer, device)
        val_pred = classifier.predict_proba(list(val_texts), params.eval_batch_size).argmax(axis=1)
        scores = classification_metrics(list(val_labels), val_pred.tolist(), classifier.labels)
        record = {"epoch": float(epoch),
                  "train_loss": float(np.mean(losses)) if losses else float("nan"),
                  "val_accuracy": scores.accuracy, "val_macro_f1": scores.macro_f1,
                  "dp_epsilon": float(engine.get_epsilon(dp.target_delta))}
        result.history.append(record)
        if on_epoch is not None:
            on_epoch(epoch, record)

    private_model.remove_hooks()  # the model goes on to plain inference and saving
    for weight in model.parameters():
        weight.requires_grad_(True)
        weight.grad_sample = None
    model.eval()
    result.best_epoch = params.epochs
    result.steps = step
    result.seconds = time.perf_counter() - started
    result.samples_per_second = samples / max(result.seconds, 1e-9)
    result.peak_memory_mb = peak_memory_mb(device)
    result.epsilon = float(engine.get_epsilon(dp.target_delta))
    result.delta = dp.target_delta
    result.noise_multiplier = float(optimizer.noise_multiplier)
    return result
