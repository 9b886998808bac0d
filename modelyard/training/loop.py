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
from modelyard.evaluation.metrics import PER_CLASS, Metrics, classification_metrics
from modelyard.inference import TextClassifier, pick_device
from modelyard.training import checkpoint as ckpt
from modelyard.training import distributed

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


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_process(params: TrainParams) -> str:
    """Threads, every global RNG seeded, the device picked: the start of any training run."""
    import torch

    if params.threads:
        torch.set_num_threads(params.threads)
    seed_everything(params.seed)
    return pick_device()


@dataclass(frozen=True)
class Encoded:
    """The training texts, tokenized once; padding happens per batch (`pad`)."""

    input_ids: list[list[int]]
    lengths: list[int]
    targets: Any  # a torch.long tensor of label ids, one per text


def encode(tokenizer: Any, texts: Sequence[str], labels: Sequence[int]) -> Encoded:
    import torch

    input_ids = tokenizer(list(texts), truncation=True)["input_ids"]
    return Encoded(
        input_ids, [len(ids) for ids in input_ids], torch.tensor(list(labels), dtype=torch.long)
    )


def pad(tokenizer: Any, data: Encoded, rows: Sequence[int] | np.ndarray) -> Any:
    """The rows' token ids padded to their longest, as tensors (input_ids, attention_mask…)."""
    return tokenizer.pad({"input_ids": [data.input_ids[i] for i in rows]}, return_tensors="pt")


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


def linear_schedule(optimizer: Any, params: TrainParams, total_steps: int) -> Any:
    """Linear warm-up keeps the first updates from wrecking the pretrained weights while Adam's
    second-moment estimates are still noise; linear decay to zero anneals at the end."""
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(
        optimizer, int(params.warmup_ratio * total_steps), total_steps
    )


def step_values(loss: float, scheduler: Any) -> dict[str, float]:
    """What `on_step` hears after an optimizer step."""
    return {"train_loss": loss, "learning_rate": scheduler.get_last_lr()[0]}


def evaluate(
    model: Any,
    tokenizer: Any,
    device: str,
    texts: Sequence[str],
    labels: Sequence[int],
    batch_size: int,
) -> Metrics:
    """The model's metrics on the validation split (leaves the model in eval mode)."""
    classifier = TextClassifier(model, tokenizer, device)
    predicted = classifier.predict_proba(list(texts), batch_size).argmax(axis=1)
    return classification_metrics(list(labels), predicted.tolist(), classifier.labels)


def epoch_record(epoch: int, losses: Sequence[float], scores: Metrics) -> dict[str, float]:
    """An epoch's entry in the history: its mean step loss and its validation scores (each
    class's precision, recall and F1 too: a rare class's recall is what an imbalanced task
    watches)."""
    return {
        "epoch": float(epoch),
        "train_loss": float(np.mean(losses)) if losses else float("nan"),
        "val_accuracy": scores.accuracy,
        "val_macro_f1": scores.macro_f1,
        **{
            f"val_{measure}_{label}": figures[measure]
            for label, figures in scores.per_class.items()
            for measure in PER_CLASS
        },
    }


def class_weights(labels: Sequence[int], classes: int, mode: str) -> list[float] | None:
    """The loss weight of each class id (None: unweighted). `balanced` weighs class c by
    rows / (classes present × rows of c), as scikit-learn's `compute_class_weight`: every class
    adds up to the same total weight, and the mean weight per training row is 1, so the loss
    keeps its scale (and the learning rate its meaning). A class with no rows weighs 1."""
    if mode == "none":
        return None
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=classes)
    present = int((counts > 0).sum())
    return [len(labels) / (present * n) if n else 1.0 for n in counts.tolist()]


def record_throughput(
    result: TrainResult, steps: int, samples: int, seconds: float, device: str
) -> None:
    result.steps = steps
    result.seconds = seconds
    result.samples_per_second = samples / max(seconds, 1e-9)
    result.peak_memory_mb = peak_memory_mb(device)


def _optimizer(model: Any, params: TrainParams) -> Any:
    import torch

    # No weight decay on biases and LayerNorm weights: decaying them only hurts.
    decay: list[Any] = []
    no_decay: list[Any] = []
    for weight in model.parameters():
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


@dataclass(frozen=True)
class _Placement:
    """Where the run computes. `module` is the model itself (evaluated, checkpointed, saved);
    `model` is what the forward pass goes through: under torchrun a DistributedDataParallel
    wrapper that averages gradients across processes in backward (once per optimizer step, see
    accumulate_gradients)."""

    model: Any
    module: Any
    device: str
    precision: str
    processes: int
    rank: int


def _place(model: Any, params: TrainParams) -> _Placement:
    device = prepare_process(params)
    precision = resolve_precision(device, params.precision)
    module = model.to(device)
    processes, rank = distributed.world()
    if processes > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(module)
    return _Placement(model, module, device, precision, processes, rank)


@dataclass(frozen=True)
class _Plan:
    steps_per_epoch: int
    total_steps: int
    epochs: int


def _plan(texts: int, params: TrainParams, processes: int) -> _Plan:
    """Optimizer steps per epoch (each rank its share of the micro-batches, `grad_accumulation`
    of them a step), the run's steps (`max_steps` wins) and the epochs they span."""
    micro_batches = -(-texts // params.batch_size) // processes
    steps_per_epoch = -(-micro_batches // params.grad_accumulation)
    total_steps = params.max_steps or steps_per_epoch * params.epochs
    return _Plan(steps_per_epoch, total_steps, -(-total_steps // steps_per_epoch))


@dataclass(frozen=True)
class _Optimization:
    optimizer: Any
    scheduler: Any
    scaler: Any

    def backward(self, loss: Any) -> None:
        self.scaler.scale(loss).backward()


def _optimization(
    module: Any, params: TrainParams, precision: str, total_steps: int
) -> _Optimization:
    import torch

    optimizer = _optimizer(module, params)
    scheduler = linear_schedule(optimizer, params, total_steps)
    # fp16 has too little range for small gradients: scale the loss up, unscale before clipping.
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    return _Optimization(optimizer, scheduler, scaler)


@dataclass(frozen=True)
class _Forward:
    """One micro-batch's forward pass and loss, under autocast where the precision asks."""

    model: Any
    tokenizer: Any
    data: Encoded
    device: str
    autocast_dtype: Any  # None: no autocast (fp32)
    weights: Any = None  # per-class loss weights on the device (train.class_weights); None: none

    def loss(self, idx: np.ndarray, texts_in_step: int) -> Any:
        import torch

        dtype = self.autocast_dtype
        batch = pad(self.tokenizer, self.data, idx)
        batch = {key: value.to(self.device) for key, value in batch.items()}
        targets = self.data.targets[idx].to(self.device)
        with torch.autocast(device_type=self.device, dtype=dtype, enabled=dtype is not None):
            if self.weights is None:
                loss = self.model(**batch, labels=targets).loss
            else:
                loss = weighted_loss(self.model(**batch).logits, targets, self.weights)
        # Weight each micro-batch by its share of the step's texts, so accumulated gradients
        # equal those of one big batch.
        return loss * (len(idx) / texts_in_step)


def weighted_loss(logits: Any, targets: Any, weights: Any) -> Any:
    """Cross-entropy with each text weighed by its class, averaged over the texts (not over
    their weights, as torch's `weight=` would): a micro-batch's loss then adds up with the
    others' by text count, and the mean weight of 1 keeps the unweighted loss's scale."""
    import torch

    per_text = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none")
    return (per_text * weights[targets]).mean()


def _forward(placed: _Placement, tokenizer: Any, data: Encoded, params: TrainParams) -> _Forward:
    """The forward pass of this run, with the class weights `train.class_weights` asks for
    (computed from all the training labels: every process of a DDP run the same)."""
    import torch

    classes = len(placed.module.config.id2label)
    weights = class_weights(data.targets.tolist(), classes, params.class_weights)
    return _Forward(
        placed.model,
        tokenizer,
        data,
        placed.device,
        _autocast_dtype(placed.precision),
        None if weights is None else torch.tensor(weights, device=placed.device),
    )


def _autocast_dtype(precision: str) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


@dataclass
class _State:
    """Where the run stands: what a checkpoint carries besides the weights, the optimizer's
    state, the RNGs and the result so far."""

    step: int = 0
    samples: int = 0
    epoch: int = 1  # the epoch to run next
    groups_done: int = 0  # of that epoch, when resumed mid-epoch
    losses: list[float] = field(default_factory=list)  # the epoch's step losses so far
    best_score: float = -1.0
    best_state: dict[str, Any] | None = None  # None: the last epoch's weights are the best
    stale_epochs: int = 0
    seconds_before: float = 0.0  # spent by the runs this one resumes


@dataclass(frozen=True)
class _Run:
    """What the epochs share and never change."""

    placed: _Placement
    plan: _Plan
    opt: _Optimization
    forward: _Forward
    params: TrainParams
    val_texts: Sequence[str]
    val_labels: Sequence[int]
    on_step: StepCallback | None
    on_epoch: EpochCallback | None
    bar: Any
    checkpoints: Path | None
    started: float


def _resume(
    saved: Mapping[str, Any],
    module: Any,
    opt: _Optimization,
    rng: np.random.Generator,
    result: TrainResult,
) -> _State:
    """Put the model, the optimizer, the RNGs and the result back as `saved` holds them."""
    module.load_state_dict(saved["model"])
    opt.optimizer.load_state_dict(saved["optimizer"])
    opt.scheduler.load_state_dict(saved["scheduler"])
    opt.scaler.load_state_dict(saved["scaler"])
    rng.bit_generator.state = saved["epoch_rng"]
    result.history, result.best_epoch = saved["history"], saved["best_epoch"]
    ckpt.set_rng_state(saved["rng"])
    result.resumed_from_step = saved["step"]
    return _State(
        step=saved["step"],
        samples=saved["samples"],
        epoch=saved["epoch"],
        groups_done=saved["groups_done"],
        losses=saved["losses"],
        best_score=saved["best_score"],
        best_state=saved["best_state"],
        stale_epochs=saved["stale_epochs"],
        seconds_before=saved["seconds"],
    )


def _checkpoint(
    run: _Run,
    state: _State,
    result: TrainResult,
    epoch: int,
    groups_done: int,
    epoch_rng: Mapping[str, Any],
) -> None:
    """Save a resumable state: about to run `epoch`, `groups_done` of its steps done."""
    if run.checkpoints is None or run.placed.rank != 0:
        return
    opt = run.opt
    ckpt.save(
        run.checkpoints,
        state.step,
        {
            "model": run.placed.module.state_dict(),
            "optimizer": opt.optimizer.state_dict(),
            "scheduler": opt.scheduler.state_dict(),
            "scaler": opt.scaler.state_dict(),
            "step": state.step,
            "samples": state.samples,
            "epoch": epoch,
            # At an epoch's start its losses are none yet (the last epoch's must not carry over).
            "groups_done": groups_done,
            "losses": state.losses if groups_done else [],
            "epoch_rng": epoch_rng,
            "history": result.history,
            "best_score": state.best_score,
            "best_state": state.best_state,
            "stale_epochs": state.stale_epochs,
            "best_epoch": result.best_epoch,
            "rng": ckpt.rng_state(),
            "seconds": state.seconds_before + time.perf_counter() - run.started,
        },
    )


def _step_groups(run: _Run, rng: np.random.Generator) -> list[list[np.ndarray]]:
    """The epoch's micro-batches, `grad_accumulation` to an optimizer step."""
    placed, params = run.placed, run.params
    batches = length_grouped_batches(run.forward.data.lengths, params.batch_size, rng)
    if placed.processes > 1:  # every rank the same number of batches, each its own
        batches = batches[: len(batches) // placed.processes * placed.processes]
        batches = batches[placed.rank :: placed.processes]
    accumulate = params.grad_accumulation
    return [batches[i : i + accumulate] for i in range(0, len(batches), accumulate)]


def _optimizer_step(run: _Run, group: Sequence[np.ndarray], texts_in_step: int) -> float:
    """Accumulate the group's gradients, clip, step; returns the step's loss."""
    import torch

    opt = run.opt
    step_loss = accumulate_gradients(
        run.placed.model,
        group,
        functools.partial(run.forward.loss, texts_in_step=texts_in_step),
        opt.backward,
    )
    opt.scaler.unscale_(opt.optimizer)
    # Clipping the global norm bounds any single step, whatever one odd batch does.
    torch.nn.utils.clip_grad_norm_(run.placed.module.parameters(), run.params.max_grad_norm)
    opt.scaler.step(opt.optimizer)
    opt.scaler.update()
    opt.scheduler.step()
    opt.optimizer.zero_grad(set_to_none=True)
    return step_loss


def _count_step(run: _Run, state: _State, epoch: int, texts_in_step: int, step_loss: float) -> None:
    state.step += 1
    state.samples += texts_in_step * run.placed.processes
    state.losses.append(step_loss)
    run.bar.update(1)
    run.bar.set_postfix(epoch=epoch, loss=f"{step_loss:.3f}")
    if run.on_step is not None:
        run.on_step(state.step, step_values(step_loss, run.opt.scheduler))


def _train_epoch(
    run: _Run, state: _State, result: TrainResult, epoch: int, rng: np.random.Generator
) -> None:
    """The epoch's optimizer steps, skipping those a resumed run already did, checkpointing
    every `checkpoint_every` steps (the epoch's last step excepted: its end saves one)."""
    run.placed.model.train()
    # The batch order of an epoch is a function of the generator's state at its start;
    # a resumed epoch rebuilds the same order and skips the groups already done.
    epoch_rng = copy.deepcopy(rng.bit_generator.state)
    groups = _step_groups(run, rng)
    every = run.params.checkpoint_every
    for index, group in enumerate(groups):
        if index < state.groups_done:
            continue
        if state.step >= run.plan.total_steps:
            break
        texts_in_step = sum(len(idx) for idx in group)
        step_loss = _optimizer_step(run, group, texts_in_step)
        _count_step(run, state, epoch, texts_in_step, step_loss)
        if every and state.step % every == 0 and index + 1 < len(groups):
            _checkpoint(run, state, result, epoch, index + 1, epoch_rng)
    state.groups_done = 0


def _select(state: _State, result: TrainResult, epoch: int, score: float, run: _Run) -> None:
    """Keep the best epoch's weights by val macro-F1 and count the epochs without state.
    The last epoch's weights are the model's own: no copy needed when it is the best."""
    if score > state.best_score:
        state.best_score, result.best_epoch, state.stale_epochs = score, epoch, 0
        state.best_state = (
            copy.deepcopy(run.placed.module.state_dict()) if epoch < run.plan.epochs else None
        )
    else:
        state.stale_epochs += 1


def _validate(run: _Run, state: _State, result: TrainResult, epoch: int) -> None:
    """Score the epoch on the validation split, record it, tell `on_epoch`, select."""
    placed = run.placed
    scores = evaluate(
        placed.module,
        run.forward.tokenizer,
        placed.device,
        run.val_texts,
        run.val_labels,
        run.params.eval_batch_size,
    )
    record = epoch_record(epoch, state.losses, scores)
    result.history.append(record)
    if run.on_epoch is not None:
        run.on_epoch(epoch, record)
    _select(state, result, epoch, scores.macro_f1, run)


def _patience_spent(state: _State, params: TrainParams) -> bool:
    return (
        params.early_stopping_patience is not None
        and state.stale_epochs >= params.early_stopping_patience
    )


def _finish(run: _Run, state: _State, result: TrainResult) -> TrainResult:
    """Leave the model holding the best epoch's weights, in eval mode; fill in the result."""
    result.stopped_early = _patience_spent(state, run.params) and state.step < run.plan.total_steps
    if state.best_state is not None:
        run.placed.module.load_state_dict(state.best_state)
    run.placed.module.eval()
    seconds = state.seconds_before + time.perf_counter() - run.started
    record_throughput(result, state.step, state.samples, seconds, run.placed.device)
    return result


def _progress_bar(total_steps: int, done: int, progress: bool | None) -> Any:
    from tqdm.auto import tqdm

    disable = None if progress is None else not progress
    return tqdm(total=total_steps, initial=done, desc="train", unit="step", disable=disable)


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
    placed = _place(model, params)
    data = encode(tokenizer, train_texts, train_labels)
    plan = _plan(len(data.input_ids), params, placed.processes)
    opt = _optimization(placed.module, params, placed.precision, plan.total_steps)
    rng = np.random.default_rng(params.seed)
    result = TrainResult(device=placed.device, precision=placed.precision)
    saved = ckpt.latest(checkpoints)
    state = (
        _State() if saved is None else _resume(ckpt.load(saved), placed.module, opt, rng, result)
    )
    bar = _progress_bar(plan.total_steps, state.step, progress)
    forward = _forward(placed, tokenizer, data, params)
    run = _Run(
        placed,
        plan,
        opt,
        forward,
        params,
        val_texts,
        val_labels,
        on_step,
        on_epoch,
        bar,
        checkpoints,
        time.perf_counter(),
    )
    resumed_epoch = state.epoch if saved is not None else None  # keeps its step losses so far
    for epoch in range(state.epoch, plan.epochs + 1):
        if state.step >= plan.total_steps or _patience_spent(state, params):
            break
        if epoch != resumed_epoch:
            state.losses = []
        _train_epoch(run, state, result, epoch, rng)
        _validate(run, state, result, epoch)
        if epoch < plan.epochs:  # the start of the next epoch, as a resumable state
            _checkpoint(run, state, result, epoch + 1, 0, copy.deepcopy(rng.bit_generator.state))
    bar.close()
    return _finish(run, state, result)
