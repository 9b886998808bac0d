"""The monitor flow over 100,000 logged predictions (target: under 60 s on 2 cores), against the
floor of the same run: reading those rows from the database and nothing else.

    .venv/bin/python bench/monitor_100k.py [--backbone minilm|tiny] [--rows 100000]

MiniLM with an untrained head is registered with lineage pointing at a 3,000-row training file;
the prediction log gets `--rows` rows of other generated reviews (10% with feedback).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    import numpy as np
    import pandas as pd
    import yaml
    from sqlalchemy import insert, select

    from modelyard.config import ModelParams, load_params
    from modelyard.data.synthetic import LABELS, ReviewSpec, generate_reviews, write_reviews
    from modelyard.env import apply_defaults
    from modelyard.inference import TextClassifier
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.registry.pyfunc import predictions_frame
    from modelyard.store.db import engine_for
    from modelyard.store.models import Feedback, Prediction
    from modelyard.training.model import build_model

    apply_defaults()
    scratch = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    os.environ["MODELYARD_HOME"] = str(scratch)
    train = write_reviews(scratch / "train.csv", ReviewSpec(rows=3000, seed=1))
    texts = [t for t, _ in generate_reviews(ReviewSpec(rows=3000, seed=1))]
    model, tokenizer = build_model(ModelParams(backbone=args.backbone), list(LABELS), texts)
    directory = TextClassifier(model, tokenizer, "cpu").save(scratch / "model")
    registry = MlflowRegistry(
        f"sqlite:///{scratch}/mlflow.db", "modelyard", (scratch / "mlruns").as_uri()
    )
    run_id = registry.start_run("bench", {})
    example = pd.DataFrame({"text": texts[:3]})
    uri = registry.log_model(
        run_id, directory, example, predictions_frame(TextClassifier.load(directory), texts[:3])
    )
    registry.end_run(run_id)
    md5 = hashlib.md5(train.read_bytes()).hexdigest()
    registry.register(
        uri,
        "bench",
        run_id,
        {"dataset_md5": md5, "dataset_path": str(train), "test_accuracy": "0.85"},
    )
    registry.set_alias("bench", "production", "1")

    pool = [t for t, _ in generate_reviews(ReviewSpec(rows=20000, seed=2))]
    rng = np.random.default_rng(0)
    now = datetime.now(UTC)
    database = f"sqlite:///{scratch}/modelyard.db"
    engine = engine_for(database)
    probabilities = rng.dirichlet([2, 2, 2], size=args.rows)
    rows = [
        {
            "id": str(uuid.uuid4()),
            "created_at": now,
            "model": "bench",
            "version": "1",
            "text": pool[i % len(pool)],
            "text_sha256": "0" * 64,
            "label": LABELS[int(p.argmax())],
            "probabilities": dict(zip(LABELS, map(float, p), strict=True)),
            "latency_ms": 5.0,
        }
        for i, p in enumerate(probabilities)
    ]
    with engine.begin() as connection:
        for start in range(0, len(rows), 10000):
            connection.execute(insert(Prediction), rows[start : start + 10000])
        connection.execute(
            insert(Feedback),
            [
                {"prediction_id": r["id"], "label": r["label"], "created_at": now}
                for r in rows[: args.rows // 10]
            ],
        )
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml").updated(
        {"model.name": "bench", "model.backbone": args.backbone}
    )
    (scratch / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))

    started = time.perf_counter()
    with engine.connect() as connection:
        floor_rows = len(
            pd.read_sql(
                select(Prediction.id, Prediction.text, Prediction.label, Prediction.probabilities),
                connection,
            )
        )
    floor = time.perf_counter() - started
    engine.dispose()

    from prefect.testing.utilities import prefect_test_harness

    from flows.monitor import monitor

    with prefect_test_harness(server_startup_timeout=None):
        started = time.perf_counter()
        report = monitor(params_path=str(scratch / "params.yaml"))
        took = time.perf_counter() - started

    print(
        f"backbone {args.backbone}: {report['predictions']} predictions, "
        f"{report['quality']['labelled']} with feedback; degraded: {report['degraded']}"
    )
    for test in report["tests"]:
        print(f"  {test['name']:20s} {'ALARM' if test['alarm'] else 'ok':5s} {test['detail']}")
    print(f"reading the {floor_rows} rows alone: {floor:.1f} s")
    print(f"monitor flow: {took:.1f} s (target < 60 s); {took / floor:.1f}x the read floor")


if __name__ == "__main__":
    main()
