"""Fine-tune the MiniLM backbone on SST-2 and score it on SST-2 dev, through the same `fit` the
retrain flow runs. Prints the device, precision, samples/s, peak memory, dev accuracy, each
class's precision/recall/F1 and the positive class's ROC-AUC and PR-AUC, next to the two
baselines the gate reports (majority class; TF-IDF + logistic regression) trained on the same
rows and scored on the same dev set.

    .venv/bin/python bench/sst2_finetune.py                      # 4,000 rows, 1 epoch (CPU)
    .venv/bin/python bench/sst2_finetune.py --rows 20000 --max-steps 300 --require-cuda

With --require-cuda it exits non-zero unless training really ran on a CUDA device.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelyard.training.loop import TrainResult

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "sst2"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--require-cuda", action="store_true")
    return parser.parse_args()


def main() -> int:
    args = _arguments()

    from modelyard.config import Params
    from modelyard.data import dataset as ds
    from modelyard.env import apply_defaults
    from modelyard.evaluation.candidate import evaluate_baselines
    from modelyard.evaluation.metrics import score
    from modelyard.inference import TextClassifier
    from modelyard.training.fit import fit

    apply_defaults()
    params = Params().updated(
        {
            "data.text_column": "sentence",
            "data.labels": [0, 1],
            "data.seed": 42,
            "train.epochs": args.epochs,
            "train.max_steps": args.max_steps,
            "train.batch_size": args.batch_size,
            "train.learning_rate": args.learning_rate,
            "train.checkpoint_every": None,
        }
    )
    train = ds.to_canonical(ds.read_frame(args.data / "train.tsv"), params.data)
    train = train.sample(n=min(args.rows, len(train)), random_state=0).reset_index(drop=True)
    dev = ds.to_canonical(ds.read_frame(args.data / "dev.tsv"), params.data)
    # SST-2 dev is the test set here; the validation split (epoch selection) is cut from train.
    splits = ds.split(train, params.data, dev)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        trained = fit(splits, params, Path(scratch) / "model", progress=False)
        classifier = TextClassifier.load(trained.model_dir)
        metrics = score(
            classifier,
            splits.test[ds.TEXT].tolist(),
            splits.test[ds.LABEL].tolist(),
            list(params.data.labels),
            params.data.positive,
        )
    baselines = evaluate_baselines(
        splits.train, splits.test, list(params.data.labels), params.data.positive
    )
    result = trained.result
    print(f"rows: train {len(splits.train)}, val {len(splits.val)}, dev {len(splits.test)}")
    _print_run(result, time.perf_counter() - started)
    print(f"SST-2 dev accuracy {metrics.accuracy:.4f}, macro-F1 {metrics.macro_f1:.4f}")
    _print_figures(
        {
            "MiniLM": metrics.headline(),
            "majority": baselines.majority.headline(),
            "bag of words": baselines.bag_of_words.headline(),
        }
    )
    if args.require_cuda and result.device != "cuda":
        print(f"FAIL: training ran on {result.device}, not on a CUDA GPU", file=sys.stderr)
        return 1
    return 0


def _print_run(result: TrainResult, seconds: float) -> None:
    print(
        f"device {result.device}, precision {result.precision} (bf16: {result.precision == 'bf16'})"
    )
    print(
        f"steps {result.steps}, {result.samples_per_second:.1f} samples/s, "
        f"peak memory {result.peak_memory_mb:.0f} MiB, {seconds:.0f} s"
    )


def _print_figures(columns: dict[str, dict[str, float]]) -> None:
    """One row per headline metric (per-class figures and AUCs, positive class "1"), one column
    per model; slices left out."""
    first = next(iter(columns.values()))
    rows = [metric for metric in first if not metric.startswith("slice_")]
    print(f"{'metric':<14}" + "".join(f"{name:>14}" for name in columns))
    for metric in rows:
        print(
            f"{metric:<14}"
            + "".join(f"{c.get(metric, float('nan')):>14.4f}" for c in columns.values())
        )


if __name__ == "__main__":
    sys.exit(main())
