"""`POST /explain` latency on one text, over real HTTP, for the default model (MiniLM; the
weights of a fine-tuned head cost the same as a fresh one). Target: under 2 s on 2 CPU cores.

    .venv/bin/python bench/explain_latency.py [--backbone minilm|tiny] [--requests 20]

Measured in the same run: `/predict` on the same texts (the baseline: one forward pass), and
`/explain` on a text at the model's full 128-token length (the worst case).

    .venv/bin/python bench/explain_latency.py --report [--model-dir DIR] [--params params.yaml]

The retrain's explanation report instead: fine-tunes the configured model on the default dataset
with the real params (the baseline: the training a retrain does), then times the report on its
test split with the params' `explain:` section, and prints its cost as a share of the training
(target: at most 10%). `--model-dir` keeps the trained model and its training time there and
reuses them on the next run (a MiniLM training takes minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def _timed(http, path: str, texts: list[str]) -> list[float]:
    out = []
    for text in texts:
        started = time.perf_counter()
        response = http.post(path, json={"text": text})
        out.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return out


def _summary(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"median {statistics.median(ordered) * 1000:7.1f} ms, p95 {p95 * 1000:7.1f} ms, "
        f"max {ordered[-1] * 1000:7.1f} ms"
    )


_TRAINED = "train_seconds.json"


@dataclass(frozen=True)
class Timing:
    seconds: float  # wall clock
    cpu_seconds: float  # this process, all threads: steadier than wall time on shared cores

    def share_of(self, whole: Timing) -> str:
        return (
            f"{100 * self.seconds / whole.seconds:.1f}% wall, "
            f"{100 * self.cpu_seconds / whole.cpu_seconds:.1f}% CPU"
        )


def _trained_model(params_path: Path, model_dir: Path) -> tuple[object, Timing]:
    """(test split, training time) of the configured model fine-tuned on the default
    dataset into `model_dir`, trained now unless a previous run left it there."""
    import json

    import pandas as pd

    from modelyard.config import load_params
    from modelyard.data.dataset import split
    from modelyard.data.synthetic import generate_reviews
    from modelyard.training.fit import fit

    params = load_params(params_path)
    frame = pd.DataFrame(generate_reviews(), columns=["text", "label"])
    splits = split(frame, params.data)
    record = model_dir / _TRAINED
    if not record.is_file():
        started, cpu = time.perf_counter(), time.process_time()
        fit(splits, params, model_dir / "model", progress=False)
        record.write_text(
            json.dumps(
                {
                    "seconds": time.perf_counter() - started,
                    "cpu_seconds": time.process_time() - cpu,
                    "train_rows": len(splits.train),
                }
            )
        )
    figures = json.loads(record.read_text())
    return splits.test, Timing(figures["seconds"], figures["cpu_seconds"])


def report_cost(params_path: Path, model_dir: Path) -> None:
    import torch

    from modelyard.config import load_params
    from modelyard.data.dataset import LABEL, TEXT
    from modelyard.explain import Explainer, explanation_report
    from modelyard.inference import TextClassifier

    test, training = _trained_model(params_path, model_dir)
    explain = load_params(params_path).explain
    started, cpu = time.perf_counter(), time.process_time()
    # What tasks/explain.py does, less the MLflow and Prefect writes (milliseconds).
    explainer = Explainer(TextClassifier.load(model_dir / "model"), explain.report_n_steps)
    report = explanation_report(
        explainer,
        test[TEXT].tolist(),
        test[LABEL].tolist(),
        explain.report_texts_per_class,
        explain.report_top_tokens,
        explain.report_worst,
    )
    cost = Timing(time.perf_counter() - started, time.process_time() - cpu)
    explained = sum(d.explained for d in report.drivers) + len(report.worst)
    print(
        f"{torch.get_num_threads()} CPU threads; {len(test)} test texts; explain: "
        f"{explain.model_dump()}"
    )
    print(
        f"  training (baseline):  {training.seconds:7.1f} s wall, {training.cpu_seconds:7.1f} s CPU"
    )
    print(
        f"  explanation report:   {cost.seconds:7.1f} s wall, {cost.cpu_seconds:7.1f} s CPU  "
        f"({explained} texts explained)"
    )
    print(f"  report costs {cost.share_of(training)} of the training (target <= 10%)")
    print(report.to_markdown())


def main() -> None:
    root_dir = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root_dir))
    sys.path.insert(0, str(root_dir / "bench"))
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument(
        "--report",
        action="store_true",
        help="time the retrain's explanation report against the training",
    )
    parser.add_argument("--params", type=Path, default=root_dir / "params.yaml")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="with --report: keep (and reuse) the trained model here",
    )
    args = parser.parse_args()
    if args.report:
        if args.model_dir is None:
            with tempfile.TemporaryDirectory() as scratch:
                report_cost(args.params, Path(scratch))
        else:
            args.model_dir.mkdir(parents=True, exist_ok=True)
            report_cost(args.params, args.model_dir)
        return

    import httpx
    import torch
    from serving_throughput import _register

    from modelyard.config import ExplainParams, ServingParams
    from modelyard.data.synthetic import generate_reviews
    from modelyard.env import apply_defaults
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.serving.app import create_app
    from tests.conftest import ServerThread

    apply_defaults()
    texts = [text for text, _ in generate_reviews()][: args.requests]
    longest = " ".join(["the battery lasts a full day and the screen is bright"] * 30)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        uri = _register(root, args.backbone)
        app = create_app(
            lambda: MlflowRegistry(uri, "bench"),
            "bench",
            ServingParams(poll_interval_s=3600),
            f"sqlite:///{root}/log.db",
            None,
            explain=ExplainParams(),
        )
        with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=120) as http:
            _timed(http, "/explain", [*texts[:2], longest])  # warm-up, both shapes
            predict = _timed(http, "/predict", texts)
            explain = _timed(http, "/explain", texts)
            full = _timed(http, "/explain", [longest] * 5)
            tokens = len(http.post("/explain", json={"text": longest}).json()["tokens"])

    words = statistics.mean(len(t.split()) for t in texts)
    print(
        f"backbone {args.backbone}, {torch.get_num_threads()} CPU threads, "
        f"{ExplainParams().n_steps} integration steps; {len(texts)} texts of "
        f"{words:.0f} words on average"
    )
    print(f"  /predict (baseline):   {_summary(predict)}")
    print(f"  /explain:              {_summary(explain)}")
    print(f"  /explain, 128 tokens:  {_summary(full)}  ({tokens} words scored)")
    print(
        f"  /explain costs {statistics.median(explain) / statistics.median(predict):.1f}x a "
        f"/predict; slowest explanation {max(explain + full):.2f} s (target < 2 s)"
    )


if __name__ == "__main__":
    main()
