"""Test isolation: no developer settings leak in, nothing is written into the repository.

The whole session runs in a scratch directory with its own PREFECT_HOME and MODELYARD_HOME, with
the Prefect/MLflow variables a developer may have exported removed (a `.env` or `prefect.toml`
in the repository would be read from the working directory, hence the chdir).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_LEAKY = ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH",
          "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_NAME",
          "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID")


def pytest_configure(config: pytest.Config) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="modelyard-tests-"))
    for name in _LEAKY + tuple(k for k in os.environ if k.startswith("MODELYARD_")):
        os.environ.pop(name, None)
    os.environ["PREFECT_HOME"] = str(scratch / "prefect")
    os.environ["MODELYARD_HOME"] = str(scratch / "home")
    (scratch / "home").mkdir()
    from modelyard.env import apply_defaults

    apply_defaults()
    os.chdir(scratch)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def real_params():
    from modelyard.config import load_params

    return load_params(REPO / "params.yaml")


@pytest.fixture(scope="session")
def tiny_params(real_params):
    """The real config, shrunk: a tiny BERT, a few epochs, the same gate structure."""
    return real_params.updated({
        "model.backbone": "tiny",
        "model.max_length": 64,
        "train.epochs": 5,
        "train.learning_rate": 3e-3,
        "train.batch_size": 32,
        "validation.min_rows": 100,
        "validation.min_rows_per_class": 10,
        "gate.min_accuracy": 0.45,
        "gate.min_macro_f1": 0.4,
    })


@pytest.fixture(scope="session")
def small_reviews(tmp_path_factory) -> Path:
    """A 1,500-row dataset from the project's own generator (another seed than the default)."""
    from modelyard.data.synthetic import ReviewSpec, write_reviews

    return write_reviews(tmp_path_factory.mktemp("data") / "reviews.csv",
                         ReviewSpec(rows=1500, seed=7))


def make_dvc_project(root: Path, remote: Path) -> Path:
    """A git repository with DVC initialised and a local default remote: what `modelyard data`
    works in. Returns `root`."""
    import subprocess

    root.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(args, cwd=root, check=True, capture_output=True)

    run("git", "init", "-q")
    run("git", "config", "user.email", "tests@modelyard.invalid")
    run("git", "config", "user.name", "tests")
    from dvc.repo import Repo

    Repo.init(str(root)).close()
    run(sys.executable, "-m", "dvc", "remote", "add", "-d", "local", str(remote))
    run("git", "add", "-A")
    run("git", "commit", "-qm", "init")
    return root


def predict_in_fresh_process(tracking_uri: str, model_uri: str, texts: list[str],
                             cwd: Path) -> dict:
    """Load `model_uri` with plain `mlflow.pyfunc` in a new interpreter (as a consumer of the
    registry would) and predict: {"columns", "labels", "inputs"} as JSON gave them back."""
    import json
    import subprocess

    code = (
        "import json, mlflow, pandas as pd\n"
        f"mlflow.set_tracking_uri({tracking_uri!r})\n"
        f"model = mlflow.pyfunc.load_model({model_uri!r})\n"
        f"out = model.predict(pd.DataFrame({{'text': {texts!r}}}))\n"
        "print(json.dumps({'columns': list(out.columns), 'labels': list(out['label']),\n"
        "                  'inputs': model.metadata.get_input_schema().input_names()}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """A real uvicorn server for an ASGI app on a free local port, in a thread; `url` once
    started. A context manager: stops the server on exit."""

    def __init__(self, app) -> None:
        import threading

        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        import time

        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


TINY_LABELS = ["negative", "neutral", "positive"]
TINY_TEXTS = ["the battery is awful", "it does the job", "superb sound, would buy again"]


def register_tiny_versions(registry, name: str, root: Path, seeds=(1, 2),
                           tags=lambda seed: {}) -> None:
    """One registered version of an untrained tiny model per seed (different weights, same
    labels), each from its own MLflow run; `production` → the first."""
    import pandas as pd
    import torch

    from modelyard.config import ModelParams, TinyBackbone
    from modelyard.registry.pyfunc import predictions_frame
    from modelyard.training.model import build_model
    from modelyard.inference import TextClassifier

    for seed in seeds:
        torch.manual_seed(seed)
        params = ModelParams(backbone="tiny", max_length=32, tiny=TinyBackbone(vocab_size=120))
        model, tokenizer = build_model(params, TINY_LABELS, TINY_TEXTS * 20)
        directory = TextClassifier(model, tokenizer, "cpu").save(root / f"model-{seed}")
        run_id = registry.start_run(f"seed-{seed}", {})
        uri = registry.log_model(run_id, directory, pd.DataFrame({"text": TINY_TEXTS}),
                                 predictions_frame(TextClassifier.load(directory), TINY_TEXTS))
        registry.end_run(run_id)
        registry.register(uri, name, run_id, tags(seed))
    registry.set_alias(name, "production", "1")
