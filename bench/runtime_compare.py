"""The raw runtime limit: texts/s of eager PyTorch, ONNX fp32 and ONNX int8 at batch 1 and 32,
and each variant's parity with the PyTorch model (agreement, accuracy and macro-F1 deltas) on
the default dataset's test split — the same export and check the retrain flow runs
(`modelyard.evaluation.parity.check_runtimes`), printed as ratios to eager.

    .venv/bin/python bench/runtime_compare.py                      # MiniLM, CPU
    .venv/bin/python bench/runtime_compare.py --model-dir build/model
    .venv/bin/python bench/runtime_compare.py --device cuda --require-cuda   # bench/gpu_check.sh

Without `--model-dir` the MiniLM backbone gets a classification head fitted in seconds on its
frozen features of the default dataset's training split (logistic regression on the pooled
[CLS] vector; no fine-tune): predictions meaningful enough for parity figures, at no training
cost. Speed is measured on SST-2 dev texts (`../shared/datasets/sst2/dev.tsv`) when present,
else on the test split.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SST2_DEV = ROOT.parent / "shared" / "datasets" / "sst2" / "dev.tsv"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="a saved model directory (default: MiniLM)")
    parser.add_argument("--head-rows", type=int, default=1500, help="rows the MiniLM head fits on")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--require-cuda", action="store_true")
    parser.add_argument("--texts", type=Path, default=SST2_DEV, help="texts timed (TSV)")
    return parser.parse_args()


def default_split() -> tuple[Any, Any, list[str]]:
    """(train, test, labels) of the project's default dataset, split as a retrain splits it."""
    from modelyard.config import load_params
    from modelyard.data.dataset import read_whole, split
    from modelyard.data.synthetic import write_reviews

    params = load_params(ROOT / "params.yaml")
    with tempfile.TemporaryDirectory() as scratch:
        frame = read_whole(write_reviews(Path(scratch) / "reviews.csv"), params.data)
    splits = split(frame, params.data)
    return splits.train, splits.test, list(params.data.labels)


def minilm_with_fitted_head(train: Any, labels: list[str], rows: int, into: Path) -> Path:
    """MiniLM with its classification head fitted on frozen pooled features (see above)."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    from modelyard.config import ModelParams
    from modelyard.data.dataset import LABEL, TEXT
    from modelyard.inference import TextClassifier
    from modelyard.training.model import build_model

    sample = train.sample(min(rows, len(train)), random_state=0)
    texts = sample[TEXT].tolist()
    model, tokenizer = build_model(ModelParams(backbone="minilm"), labels, texts)
    model.eval()
    features = []
    with torch.inference_mode():
        for start in range(0, len(texts), 64):
            batch = tokenizer(
                texts[start : start + 64], padding=True, truncation=True, return_tensors="pt"
            )
            features.append(model.bert(**batch).pooler_output.numpy())
    head = LogisticRegression(max_iter=2000, C=10.0).fit(np.concatenate(features), sample[LABEL])
    order = [list(head.classes_).index(label) for label in labels]
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor(head.coef_[order], dtype=torch.float32))
        model.classifier.bias.copy_(torch.tensor(head.intercept_[order], dtype=torch.float32))
    return TextClassifier(model, tokenizer, "cpu").save(into)


def timing_texts(path: Path, fallback: list[str]) -> list[str]:
    import pandas as pd

    if not path.is_file():
        return fallback
    return pd.read_csv(path, sep="\t", quoting=3)["sentence"].astype(str).tolist()


def speed_table(directory: Path, device: str, texts: list[str]) -> dict[str, dict[int, float]]:
    """texts/s of every variant on this device kind at batch 1 and 32 (the files exported),
    best of three rounds taken in turns (`modelyard.evaluation.parity.time_variants`)."""
    from modelyard.evaluation.parity import time_variants
    from modelyard.inference import runtime as rt

    built = {}
    for name in rt.variants(rt.device_kind(device)):
        try:
            built[name] = rt.build_runtime(directory, name, device)
        except Exception as error:  # noqa: BLE001 - reported, the others still measured
            print(f"  {name}: not run ({error})")
    return time_variants(built, texts)


def report(speeds: dict[str, dict[int, float]], parity: Any) -> None:
    eager = speeds.get("eager", {})
    print(
        f"{'runtime':12s} {'batch 1':>10s} {'batch 32':>10s} {'x eager@1':>10s} {'x eager@32':>11s}"
    )
    for name, speed in speeds.items():
        ratios = [speed[b] / eager[b] if eager.get(b) else float("nan") for b in (1, 32)]
        print(f"{name:12s} {speed[1]:10.1f} {speed[32]:10.1f} {ratios[0]:10.2f} {ratios[1]:11.2f}")
    print("\nparity on the default dataset's test split (vs eager):")
    for line in parity.lines():
        print(f"  {line}")


def main() -> int:
    args = _arguments()
    sys.path.insert(0, str(ROOT))
    import torch

    from modelyard.config import RuntimeParams
    from modelyard.data.dataset import LABEL, TEXT
    from modelyard.evaluation.parity import check_runtimes

    if args.require_cuda and not torch.cuda.is_available():
        print(f"FAIL: torch {torch.__version__} sees no CUDA device", file=sys.stderr)
        return 1
    train, test, labels = default_split()
    with tempfile.TemporaryDirectory() as scratch:
        directory = args.model_dir or minilm_with_fitted_head(
            train, labels, args.head_rows, Path(scratch) / "model"
        )
        devices = ["cpu", *(["cuda"] if args.device.startswith("cuda") else [])]
        parity = check_runtimes(
            directory,
            test[TEXT].tolist(),
            test[LABEL].tolist(),
            labels,
            RuntimeParams(),
            devices,
            drop_failed=False,
        )
        texts = timing_texts(args.texts, test[TEXT].tolist())
        print(f"{len(texts)} texts timed, {torch.get_num_threads()} torch threads")
        for device in devices:
            print(f"\n== {device} ==")
            report(speed_table(directory, device, texts), parity)
    return 0


if __name__ == "__main__":
    sys.exit(main())
