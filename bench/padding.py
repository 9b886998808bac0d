"""Length-grouped batches vs plain shuffled batches: padded tokens and training steps per second,
both measured in the same run on the default dataset.

    .venv/bin/python bench/padding.py [--backbone minilm|tiny] [--steps 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import torch

    from modelyard.config import ModelParams
    from modelyard.data.synthetic import LABELS, generate_reviews
    from modelyard.env import apply_defaults
    from modelyard.training.loop import length_grouped_batches
    from modelyard.training.model import build_model

    apply_defaults()
    rows = generate_reviews()
    texts = [text for text, _ in rows]
    targets = torch.tensor([LABELS.index(label) for _, label in rows])
    model, tokenizer = build_model(ModelParams(backbone=args.backbone), list(LABELS), texts)
    encoded = tokenizer(texts, truncation=True)["input_ids"]
    lengths = [len(ids) for ids in encoded]

    def plain(rng: np.random.Generator) -> list[np.ndarray]:
        order = rng.permutation(len(lengths))
        return [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]

    def grouped(rng: np.random.Generator) -> list[np.ndarray]:
        return length_grouped_batches(lengths, args.batch_size, rng)

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    results = {}
    for name, make in (("plain shuffle", plain), ("length-grouped", grouped)):
        batches = make(np.random.default_rng(0))
        padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
        model.train()
        started = time.perf_counter()
        for idx in batches[: args.steps]:
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt")
            model(**batch, labels=targets[idx]).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        seconds = time.perf_counter() - started
        results[name] = (padded, args.steps / seconds)
        print(f"{name:15s} padded tokens/epoch {padded:8d}   {args.steps / seconds:.2f} steps/s")
    (p0, s0), (p1, s1) = results["plain shuffle"], results["length-grouped"]
    print(
        f"ratio: {p0 / p1:.2f}x fewer padded tokens, {s1 / s0:.2f}x steps/s "
        f"({args.backbone}, batch {args.batch_size}, {args.steps} steps each)"
    )


if __name__ == "__main__":
    main()
