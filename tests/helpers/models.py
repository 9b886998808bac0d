"""Tiny models in an MLflow registry, and reading one back as a registry consumer would."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

TINY_LABELS = ["negative", "neutral", "positive"]
TINY_TEXTS = ["the battery is awful", "it does the job", "superb sound, would buy again"]
# The registered name of the tiny model the session trains once (tests/e2e/conftest.py).
TINY_MODEL = "tiny-reviews"


def tiny_store(
    root: Path,
    experiment: str,
    name: str,
    tags: Callable[[int], dict[str, str]] = lambda seed: {},
) -> tuple[Any, str]:
    """A SQLite MLflow store in `root` holding versions 1 and 2 of `name` (production → 1):
    (its registry adapter, its URI)."""
    from modelyard.registry.mlflow_registry import MlflowRegistry

    uri = f"sqlite:///{root}/mlflow.db"
    registry = MlflowRegistry(uri, experiment, (root / "mlruns").as_uri())
    register_tiny_versions(registry, name, root, tags=tags)
    return registry, uri


def register_tiny_versions(
    registry: Any,
    name: str,
    root: Path,
    seeds: Iterable[int] = (1, 2),
    tags: Callable[[int], dict[str, str]] = lambda seed: {},
) -> None:
    """One registered version of an untrained tiny model per seed (different weights, same
    labels), each from its own MLflow run; `production` → the first."""
    import pandas as pd
    import torch

    from modelyard.config import ModelParams, TinyBackbone
    from modelyard.inference import TextClassifier
    from modelyard.registry.pyfunc import predictions_frame
    from modelyard.training.model import build_model

    for seed in seeds:
        torch.manual_seed(seed)
        params = ModelParams(backbone="tiny", max_length=32, tiny=TinyBackbone(vocab_size=120))
        model, tokenizer = build_model(params, TINY_LABELS, TINY_TEXTS * 20)
        directory = TextClassifier(model, tokenizer, "cpu").save(root / f"model-{seed}")
        run_id = registry.start_run(f"seed-{seed}", {})
        uri = registry.log_model(
            run_id,
            directory,
            pd.DataFrame({"text": TINY_TEXTS}),
            predictions_frame(TextClassifier.load(directory), TINY_TEXTS),
        )
        registry.end_run(run_id)
        registry.register(uri, name, run_id, tags(seed))
    registry.set_alias(name, "production", "1")


def predict_in_fresh_process(
    tracking_uri: str, model_uri: str, texts: list[str], cwd: Path, column: str | None = "text"
) -> dict[str, Any]:
    """Load `model_uri` with plain `mlflow.pyfunc` in a new interpreter (as a consumer of the
    registry would) and predict on a frame with the texts in `column` (None: the plain list):
    {"columns", "labels", "inputs"} as JSON gave them back."""
    given = f"pd.DataFrame({{{column!r}: {texts!r}}})" if column is not None else repr(texts)
    code = (
        "import json, mlflow, pandas as pd\n"
        f"mlflow.set_tracking_uri({tracking_uri!r})\n"
        f"model = mlflow.pyfunc.load_model({model_uri!r})\n"
        f"out = model.predict({given})\n"
        "print(json.dumps({'columns': list(out.columns), 'labels': list(out['label']),\n"
        "                  'inputs': model.metadata.get_input_schema().input_names()}))\n"
    )
    return json_from_fresh_process(code, cwd)


def json_from_fresh_process(code: str, cwd: Path) -> dict[str, Any]:
    """Run `code` in a new interpreter (in `cwd`) and return the JSON object its last line
    printed."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return printed
