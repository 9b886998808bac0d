"""Fine-tuning, top to bottom: encode once, batch by length, AdamW with warm-up and linear decay,
mixed precision on GPUs, gradient accumulation, clip, evaluate each epoch, keep the best epoch's
weights, stop early when validation stops improving, checkpoint and resume."""

from __future__ import annotations

import contextlib
import copy
import functools
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from modelyard.config import TrainParams
from modelyard.training import checkpoint as ckpt
from modelyard.training import distributed
from modelyard.evaluation.metrics import classification_metrics
from modelyard.inference import TextClassifier, pick_device

StepCallback = Callable[[int, dict[str, float]], None]
EpochCallback = Callable[[int, dict[str, float]], None]
MicroBatch = TypeVar("MicroBatch")


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    steps: int = 0
    seconds: float = 0.0
    samples_per_second: float = 0.0
    device: str = "cpu"
    precision: str = "fp32"
    peak_memory_mb: float = 0.0
    stopped_early: bool = False
    resumed_from_step: int | None = None
    # Differentially private training only (train.privacy): the ε spent at δ.
    epsilon: float | None = None
    delta: float | None = None
    noise_multiplier: float | None = None


def epoch_metrics(record: dict[str, float]) -> dict[str, float]:
    """An epoch's record as MLflow metrics (step = epoch). The epoch's mean loss gets its own
    name: under `train_loss` it would mix with the per-step losses (step = optimizer step)."""
    return {("epoch_train_loss" if key == "train_loss" else key): value
            for key, value in record.items() if key != "epoch"}


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
    rng.shuffle(batches)
    return batches


def _optimizer(model: Any, params: TrainParams) -> Any:
    import torch

    # No weight decay on biases and LayerNorm weights: decaying them only hurts.
    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, weight in model.named_parameters():
        if not weight.requires_grad:
            continue
        (no_decay if weight.ndim < 2 else decay).append(weight)
    groups = [
        {"params": decay, "weight_decay": params.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=params.learning_rate)


def accumulate_gradients(
    model: Any,
    micro_batches: Sequence[MicroBatch],
    micro_loss: Callable[[MicroBatch], Any],
    backward: Callable[[Any], None],
) -> float:
    """One optimizer step's forward and backward passes, one per micro-batch: gradients add up
    in `.grad`. Returns the step's loss, the sum of the micro-batches' `micro_loss` tensors.

    Under DistributedDataParallel a backward pass all-reduces the gradients across processes;
    the step needs that once, for the sum. So every micro-batch but the last runs inside
    `no_sync` (the forward pass too: DDP decides there whether the next backward syncs), and the
    last one's all-reduce averages the gradients accumulated so far. The losses stay on the
    device and are read once: an `.item()` per micro-batch would wait for the GPU each time."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    ddp = isinstance(model, DistributedDataParallel)
    losses: list[Any] = []
    for position, micro_batch in enumerate(micro_batches):
        last = position == len(micro_batches) - 1
        with model.no_sync() if ddp and not last else contextlib.nullcontext():
            loss = micro_loss(micro_batch)
            backward(loss)
        losses.append(loss.detach())
    # Added in order as Python floats: the very figure that adding up each `.item()` gave.
    total = 0.0
    for value in torch.stack(losses).tolist():
        total += value
    return total


def resolve_precision(device: str, wanted: str) -> str:
    """fp32 on the CPU and MPS; on CUDA, bf16 where the GPU has it (same range as fp32, no
    scaler needed), else fp16 with a grad scaler."""
    import torch

    if device != "cuda":
        if wanted in ("bf16", "fp16"):
            raise ValueError(f"train.precision={wanted} needs a CUDA GPU; this run is on {device}")
        return "fp32"
    if wanted == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return wanted


def peak_memory_mb(device: str) -> float:
    """Peak GPU memory allocated on CUDA; the process's peak resident set size elsewhere."""
    import torch

    if device == "cuda":
        return float(torch.cuda.max_memory_allocated()) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


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
    checkpoints: Path | None = None,
) -> TrainResult:
    """Fine-tune `model` in place and leave it holding the best epoch's weights (by val
    macro-F1). With `checkpoints`, save a resumable state there every `checkpoint_every` steps
    and at each epoch's end, and resume from the newest one found. `progress`: a progress bar
    (None: only when stderr is a terminal)."""
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    if params.threads:
        torch.set_num_threads(params.threads)
    seed_everything(params.seed)
    device = pick_device()
    precision = resolve_precision(device, params.precision)
    module = model.to(device)  # the model itself: evaluated, checkpointed, saved
    processes, rank = distributed.world()
    if processes > 1:
        from torch.nn.parallel import DistributedDataParallel

        # Averages gradients across processes in backward (once per optimizer step, see
        # accumulate_gradients); forward goes through it.
        model = DistributedDataParallel(module)

    # Tokenize once; padding happens per batch in `tokenizer.pad`.
    encoded = tokenizer(list(train_texts), truncation=True)["input_ids"]
    lengths = [len(ids) for ids in encoded]
    targets = torch.tensor(list(train_labels), dtype=torch.long)
    accumulate = params.grad_accumulation
    micro_batches = -(-len(encoded) // params.batch_size) // processes
    steps_per_epoch = -(-micro_batches // accumulate)
    total_steps = params.max_steps or steps_per_epoch * params.epochs
    epochs = -(-total_steps // steps_per_epoch)

    optimizer = _optimizer(module, params)
    # Linear warm-up keeps the first updates from wrecking the pretrained weights while Adam's
    # second-moment estimates are still noise; linear decay to zero anneals at the end.
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(params.warmup_ratio * total_steps), total_steps
    )
    # fp16 has too little range for small gradients: scale the loss up, unscale before clipping.
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    rng = np.random.default_rng(params.seed)

    def micro_loss(idx: np.ndarray, texts_in_step: int) -> Any:
        batch = tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt")
        batch = {key: value.to(device) for key, value in batch.items()}
        with torch.autocast(device_type=device, dtype=autocast_dtype,
                            enabled=autocast_dtype is not None):
            out = model(**batch, labels=targets[idx].to(device))
        # Weight each micro-batch by its share of the step's texts, so accumulated gradients
        # equal those of one big batch.
        return out.loss * (len(idx) / texts_in_step)

    def backward(loss: Any) -> None:
        scaler.scale(loss).backward()

    result = TrainResult(device=device, precision=precision)
    best_score, best_state, stale_epochs = -1.0, None, 0
    step, samples, start_epoch, skip_groups, losses = 0, 0, 1, 0, []
    elapsed_before = 0.0

    saved = ckpt.latest(checkpoints)
    if saved is not None:
        state = ckpt.load(saved)
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        step, samples, start_epoch = state["step"], state["samples"], state["epoch"]
        skip_groups, losses = state["groups_done"], state["losses"]
        rng.bit_generator.state = state["epoch_rng"]
        result.history = state["history"]
        best_score, best_state, stale_epochs = (state["best_score"], state["best_state"],
                                                state["stale_epochs"])
        result.best_epoch, elapsed_before = state["best_epoch"], state["seconds"]
        ckpt.set_rng_state(state["rng"])
        result.resumed_from_step = step

    def checkpoint(epoch: int, groups_done: int, epoch_rng: Mapping[str, Any]) -> None:
        if checkpoints is None or rank != 0:
            return
        ckpt.save(checkpoints, step, {
            "model": module.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
            "step": step, "samples": samples, "epoch": epoch, "groups_done": groups_done,
            "losses": losses, "epoch_rng": epoch_rng, "history": result.history,
            "best_score": best_score, "best_state": best_state, "stale_epochs": stale_epochs,
            "best_epoch": result.best_epoch, "rng": ckpt.rng_state(),
            "seconds": elapsed_before + time.perf_counter() - started,
        })

    started = time.perf_counter()
    bar = tqdm(total=total_steps, initial=step, desc="train", unit="step",
               disable=None if progress is None else not progress)
    for epoch in range(start_epoch, epochs + 1):
        if step >= total_steps or (params.early_stopping_patience is not None
                                   and stale_epochs >= params.early_stopping_patience):
            break
        model.train()
        # The batch order of an epoch is a function of the generator's state at its start;
        # a resumed epoch rebuilds the same order and skips the groups already done.
        epoch_rng = copy.deepcopy(rng.bit_generator.state)
        batches = length_grouped_batches(lengths, params.batch_size, rng)
        if processes > 1:  # every rank the same number of batches, each its own
            batches = batches[: len(batches) // processes * processes][rank::processes]
        groups = [batches[i : i + accumulate] for i in range(0, len(batches), accumulate)]
        if epoch != start_epoch or saved is None:
            losses = []
        for index, group in enumerate(groups):
            if index < skip_groups:
                continue
            if step >= total_steps:
                break
            texts_in_step = sum(len(idx) for idx in group)
            step_loss = accumulate_gradients(
                model, group, functools.partial(micro_loss, texts_in_step=texts_in_step), backward
            )
            scaler.unscale_(optimizer)
            # Clipping the global norm bounds any single step, whatever one odd batch does.
            torch.nn.utils.clip_grad_norm_(module.parameters(), params.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            samples += texts_in_step * processes
            losses.append(step_loss)
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{step_loss:.3f}")
            if on_step is not None:
                on_step(step, {"train_loss": step_loss,
                               "learning_rate": scheduler.get_last_lr()[0]})
            if params.checkpoint_every and step % params.checkpoint_every == 0 \
                    and index + 1 < len(groups):
                checkpoint(epoch, index + 1, epoch_rng)
        skip_groups = 0

        classifier = TextClassifier(module, tokenizer, device)
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
            best_score, result.best_epoch, stale_epochs = scores.macro_f1, epoch, 0
            best_state = copy.deepcopy(module.state_dict()) if epoch < epochs else None
        else:
            stale_epochs += 1
        if epoch < epochs:  # the start of the next epoch, as a resumable state
            checkpoint(epoch + 1, 0, copy.deepcopy(rng.bit_generator.state))
    bar.close()

    result.stopped_early = (params.early_stopping_patience is not None
                            and stale_epochs >= params.early_stopping_patience
                            and step < total_steps)
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    result.steps = step
    result.seconds = elapsed_before + time.perf_counter() - started
    result.samples_per_second = samples / max(result.seconds, 1e-9)
    result.peak_memory_mb = peak_memory_mb(device)
    return result
