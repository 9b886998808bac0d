"""The training loop's samples/s against a bare PyTorch loop (forward, backward, AdamW step) over
the same model, data, batches and number of steps, in the same run. Ours does everything the
training task does: length-grouped batches, warm-up/decay schedule, clipping, the autocast and
grad-scaler hooks, a checkpoint every `train.checkpoint_every` steps (default 50) and the
per-step callback. Validation is excluded from both (a 64-text validation set).

    .venv/bin/python bench/train_throughput.py [--backbone minilm|tiny] [--steps 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        help="default: train.checkpoint_every of the default params (200)",
    )
    args = parser.parse_args()

    import torch

    from modelyard.config import Params
    from modelyard.data.synthetic import LABELS, generate_reviews
    from modelyard.env import apply_defaults
    from modelyard.training.loop import length_grouped_batches, seed_everything, train_classifier
    from modelyard.training.model import build_model

    apply_defaults()
    params = Params().updated(
        {
            "model.backbone": args.backbone,
            "train.max_steps": args.steps,
            "train.batch_size": args.batch_size,
        }
    )
    if args.checkpoint_every:
        params = params.updated({"train.checkpoint_every": args.checkpoint_every})
    rows = generate_reviews()
    texts = [text for text, _ in rows]
    labels = [LABELS.index(label) for _, label in rows]

    def fresh() -> tuple:
        seed_everything(params.train.seed)
        return build_model(params.model, list(LABELS), texts)

    # Warm-up: first-iteration allocations and kernel choices should count for neither loop.
    model, tokenizer = fresh()
    warm = tokenizer(texts[:32], truncation=True, padding=True, return_tensors="pt")
    model(**warm, labels=torch.tensor(labels[:32])).loss.backward()

    # The bare loop, on exactly the batches the training loop draws.
    _, tokenizer = fresh()
    encoded = tokenizer(texts, truncation=True)["input_ids"]
    targets = torch.tensor(labels)
    batches = length_grouped_batches(
        [len(ids) for ids in encoded], args.batch_size, np.random.default_rng(params.train.seed)
    )[: args.steps]

    def bare_loop() -> list[float]:
        model, tokenizer = fresh()
        optimizer = torch.optim.AdamW(model.parameters(), lr=params.train.learning_rate)
        model.train()
        stamps = []
        for idx in batches:
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt")
            model(**batch, labels=targets[idx]).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            stamps.append(time.perf_counter())
        return stamps

    def training_loop() -> list[float]:
        model, tokenizer = fresh()
        stamps: list[float] = []
        with tempfile.TemporaryDirectory() as scratch:
            train_classifier(
                model,
                tokenizer,
                texts,
                labels,
                texts[:64],
                labels[:64],
                params.train,
                progress=False,
                checkpoints=Path(scratch),
                on_step=lambda step, _: stamps.append(time.perf_counter()),
            )
        return stamps

    # Both timed the same way: from the end of step 1 to the end of the last step (so neither
    # one-off set-up nor validation counts), over the same batches; run in the order A B B A
    # and the faster of each pair kept, so that drift on a busy machine favours neither.
    samples = sum(len(idx) for idx in batches[1:])
    timings: dict[str, list[float]] = {"bare": [], "ours": []}
    for name in ("bare", "ours", "ours", "bare"):
        stamps = bare_loop() if name == "bare" else training_loop()
        timings[name].append(stamps[-1] - stamps[0])
    bare_seconds, ours_seconds = min(timings["bare"]), min(timings["ours"])
    bare, ours = samples / bare_seconds, samples / ours_seconds

    print(
        f"{args.backbone}, batch {args.batch_size}, steps 2..{args.steps}, {samples} samples, "
        f"{torch.get_num_threads()} threads, checkpoint every {params.train.checkpoint_every}"
    )
    print(f"bare PyTorch loop   {bare:7.1f} samples/s  ({bare_seconds:.1f} s)")
    print(f"training loop       {ours:7.1f} samples/s  ({ours_seconds:.1f} s)")
    print(f"ratio: {ours / bare:.3f} (target ≥ 0.95)")


if __name__ == "__main__":
    main()
