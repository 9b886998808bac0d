"""Fine-tuning, top to bottom: encode once, batch by length, AdamW with warm-up and linear decay,
clip, evaluate each epoch, keep the best epoch's weights."""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard.config import TrainParams
from modelyard.evaluation.metrics import classification_metrics
from modelyard.training.model import TextClassifier, pick_device

StepCallback = Callable[[int, dict[str, float]], None]
EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    steps: int = 0
    seconds: float = 0.0
    samples_per_second: float = 0.0
    device: str = "cpu"


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Shuffled batches of indices whose texts have similar lengths.

    Padding is wasted compute: a batch pads to its longest member. Sorting within windows of 50
    batches, then shuffling the batch order, keeps most of the randomness of a plain shuffle while
    cutting the padded length of a batch roughly to its members' own (about half the tokens on
    the default dataset)."""
    order = rng.permutation(len(lengths))
    window = batch_size * 50
    batches: list[np.ndarray] = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort([lengths[i] for i in chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


def _optimizer(model: Any, params: TrainParams) -> Any:
    import torch

    # No weight decay on biases and LayerNorm weights: decaying them only hurts.
    decay, no_decay = [], []
    for name, weight in model.named_parameters():
        if not weight.requires_grad:
            continue
        (no_decay if weight.ndim < 2 else decay).append(weight)
    groups = [
        {"params": decay, "weight_decay": params.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=params.learning_rate)


def train_classifier(
    model: Any,
    tokenizer: Any,
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    val_texts: Sequence[str],
    val_labels: Sequence[int],
    params: TrainParams,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """`progress`: a progress bar (None: only when stderr is a terminal).

    Fine-tune `model` in place and leave it holding the best epoch's weights (by val macro-F1)."""
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    if params.threads:
        torch.set_num_threads(params.threads)
    seed_everything(params.seed)
    device = pick_device()
    model.to(device)

    # Tokenize once; padding happens per batch in `tokenizer.pad`.
    encoded = tokenizer(list(train_texts), truncation=True)["input_ids"]
    lengths = [len(ids) for ids in encoded]
    targets = torch.tensor(list(train_labels), dtype=torch.long)
    batches_per_epoch = -(-len(encoded) // params.batch_size)
    total_steps = params.max_steps or batches_per_epoch * params.epochs
    epochs = -(-total_steps // batches_per_epoch)

    optimizer = _optimizer(model, params)
    # Linear warm-up keeps the first updates from wrecking the pretrained weights while Adam's
    # second-moment estimates are still noise; linear decay to zero anneals at the end.
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(params.warmup_ratio * total_steps), total_steps
    )
    rng = np.random.default_rng(params.seed)
    result = TrainResult(device=device)
    best_score, best_state = -1.0, None
    started = time.perf_counter()
    bar = tqdm(total=total_steps, desc="train", unit="step", disable=None if progress is None else not progress)
    step, samples = 0, 0
    for epoch in range(1, epochs + 1):
        model.train()
        losses: list[float] = []
        for idx in length_grouped_batches(lengths, params.batch_size, rng):
            if step >= total_steps:
                break
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt")
            batch = {key: value.to(device) for key, value in batch.items()}
            out = model(**batch, labels=targets[idx].to(device))
            out.loss.backward()
            # Clipping the global norm bounds any single step, whatever one odd batch does.
            torch.nn.utils.clip_grad_norm_(model.parameters(), params.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            samples += len(idx)
            losses.append(out.loss.item())
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{losses[-1]:.3f}")
            if on_step is not None:
                on_step(step, {"train_loss": losses[-1], "learning_rate": scheduler.get_last_lr()[0]})

        classifier = TextClassifier(model, tokenizer, device)
        val_pred = classifier.predict_proba(list(val_texts), params.eval_batch_size).argmax(axis=1)
        scores = classification_metrics(list(val_labels), val_pred.tolist(), classifier.labels)
        record = {
            "epoch": float(epoch),
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "val_accuracy": scores.accuracy,
            "val_macro_f1": scores.macro_f1,
        }
        result.history.append(record)
        if on_epoch is not None:
            on_epoch(epoch, record)
        if scores.macro_f1 > best_score:
            best_score, result.best_epoch = scores.macro_f1, epoch
            best_state = copy.deepcopy(model.state_dict()) if epoch < epochs else None
    bar.close()

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.steps = step
    result.seconds = time.perf_counter() - started
    result.samples_per_second = samples / max(result.seconds, 1e-9)
    return result
