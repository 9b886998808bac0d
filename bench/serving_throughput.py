"""Model server under concurrent load: micro-batching vs one forward pass per request, both
measured in the same run over real HTTP, against the model's own batched throughput.

    .venv/bin/python bench/serving_throughput.py [--backbone minilm|tiny] [--clients 32]
        [--requests 400]

Each client sends one-text requests back to back. "unbatched" is the same server with
max_batch_size=1; "batched" gathers up to 32 texts for up to 5 ms.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _register(root: Path, backbone: str) -> str:
    import pandas as pd

    from modelyard.config import ModelParams
    from modelyard.data.synthetic import LABELS, generate_reviews
    from modelyard.inference import TextClassifier
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.registry.pyfunc import predictions_frame
    from modelyard.training.model import build_model

    texts = [text for text, _ in generate_reviews()][:2000]
    model, tokenizer = build_model(ModelParams(backbone=backbone), list(LABELS), texts)
    directory = TextClassifier(model, tokenizer, "cpu").save(root / "model")
    uri = f"sqlite:///{root}/mlflow.db"
    registry = MlflowRegistry(uri, "bench", (root / "mlruns").as_uri())
    run_id = registry.start_run("bench", {})
    example = pd.DataFrame({"text": texts[:3]})
    model_uri = registry.log_model(
        run_id, directory, example, predictions_frame(TextClassifier.load(directory), texts[:3])
    )
    registry.end_run(run_id)
    registry.register(model_uri, "bench", run_id, {})
    registry.set_alias("bench", "production", "1")
    return uri


def _load(url: str, texts: list[str], clients: int, requests: int) -> float:
    """Requests per second with `clients` concurrent one-text clients."""
    import httpx

    counter = iter(range(requests))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                response = http.post("/predict", json={"text": texts[i % len(texts)]})
                assert response.status_code == 200, response.text

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(client)
    return requests / (time.perf_counter() - started)


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.conftest
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()

    from modelyard.config import ServingParams
    from modelyard.data.synthetic import generate_reviews
    from modelyard.env import apply_defaults
    from modelyard.inference import TextClassifier
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.serving.app import create_app
    from tests.conftest import ServerThread

    apply_defaults()
    texts = [text for text, _ in generate_reviews()][:2000]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        uri = _register(root, args.backbone)
        classifier = TextClassifier.load(root / "model", "cpu")
        classifier.predict_proba(texts[:64], 32)  # warm-up
        started = time.perf_counter()
        classifier.predict_proba(texts[: args.requests], 32)
        raw = args.requests / (time.perf_counter() - started)

        results = {}
        for label, batch in (("unbatched", 1), ("batched", 32)):
            app = create_app(
                lambda: MlflowRegistry(uri, "bench"),
                "bench",
                ServingParams(max_batch_size=batch, max_wait_ms=5, poll_interval_s=3600),
                f"sqlite:///{root}/{label}.db",
                None,
            )
            with ServerThread(app) as server:
                _load(server.url, texts, args.clients, min(64, args.requests))  # warm-up
                results[label] = _load(server.url, texts, args.clients, args.requests)

    print(f"backbone {args.backbone}, {args.clients} concurrent clients, one text per request")
    print(f"  model alone, batches of 32:  {raw:8.1f} texts/s")
    print(f"  server, unbatched:           {results['unbatched']:8.1f} requests/s")
    print(f"  server, micro-batched:       {results['batched']:8.1f} requests/s")
    print(
        f"  micro-batching speed-up: {results['batched'] / results['unbatched']:.2f}x; "
        f"{results['batched'] / raw:.0%} of the model's batched throughput"
    )


if __name__ == "__main__":
    main()
