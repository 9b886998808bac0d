"""`POST /explain` latency on one text, over real HTTP, for the default model (MiniLM; the
weights of a fine-tuned head cost the same as a fresh one). Target: under 2 s on 2 CPU cores.

    .venv/bin/python bench/explain_latency.py [--backbone minilm|tiny] [--requests 20]

Measured in the same run: `/predict` on the same texts (the baseline: one forward pass), and
`/explain` on a text at the model's full 128-token length (the worst case).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
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
    return (f"median {statistics.median(ordered) * 1000:7.1f} ms, p95 {p95 * 1000:7.1f} ms, "
            f"max {ordered[-1] * 1000:7.1f} ms")


def main() -> None:
    root_dir = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root_dir))
    sys.path.insert(0, str(root_dir / "bench"))
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()

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
        app = create_app(lambda: MlflowRegistry(uri, "bench"), "bench",
                         ServingParams(poll_interval_s=3600), f"sqlite:///{root}/log.db", None,
                         explain=ExplainParams())
        with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=120) as http:
            _timed(http, "/explain", [*texts[:2], longest])  # warm-up, both shapes
            predict = _timed(http, "/predict", texts)
            explain = _timed(http, "/explain", texts)
            full = _timed(http, "/explain", [longest] * 5)
            tokens = len(http.post("/explain", json={"text": longest}).json()["tokens"])

    words = statistics.mean(len(t.split()) for t in texts)
    print(f"backbone {args.backbone}, {torch.get_num_threads()} CPU threads, "
          f"{ExplainParams().n_steps} integration steps; {len(texts)} texts of "
          f"{words:.0f} words on average")
    print(f"  /predict (baseline):   {_summary(predict)}")
    print(f"  /explain:              {_summary(explain)}")
    print(f"  /explain, 128 tokens:  {_summary(full)}  ({tokens} words scored)")
    print(f"  /explain costs {statistics.median(explain) / statistics.median(predict):.1f}x a "
          f"/predict; slowest explanation {max(explain + full):.2f} s (target < 2 s)")


if __name__ == "__main__":
    main()
