"""S3-compatible storage for real, against a local S3 server (moto's server mode) this test
starts: a dataset version added with `modelyard data add` is pushed to a DVC remote in a bucket;
a clean clone of the project, with no DVC cache and the original's cache gone, reads it back by
version; the retrain flow trains on it against an MLflow tracking server that `make up` started
with MODELYARD_STACK_ARTIFACTS=s3://…, so the model's files land in the bucket; a fresh process
that has no S3 credentials loads `models:/NAME@production` through the server. `modelyard
doctor` checks both buckets, and names a missing one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.helpers import forked
from tests.helpers.dvc import make_dvc_project
from tests.helpers.s3 import local_s3
from tests.helpers.servers import stack_config

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
MODEL = "s3-model"
S3_ENV = ("AWS_", "MLFLOW_S3_ENDPOINT_URL")


def _run(*args: str, cwd, env=None) -> str:
    done = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=600, env=env or dict(os.environ)
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def _s3_project(root, s3, params) -> str:
    """A DVC project whose default remote is the bucket; `modelyard data add` there, committed.
    The dataset version's md5."""
    make_dvc_project(root, root.parent / "unused-local-remote")
    dvc = (sys.executable, "-m", "dvc")
    _run(*dvc, "remote", "add", "-d", "storage", f"s3://{s3.bucket}/dvc", cwd=root)
    _run(*dvc, "remote", "modify", "storage", "endpointurl", s3.endpoint, cwd=root)
    _run("git", "commit", "-qam", "DVC remote on S3", cwd=root)
    # A process of its own, forked with its imports done (tests.helpers.forked).
    added = forked.run(
        ["data", "add", str(params["data"]), "--name", "reviews", "--params", str(params["file"])],
        env=dict(os.environ),
        cwd=root,
    )
    out = added.stdout + added.stderr
    assert added.returncode == 0, out[-3000:]
    assert "added reviews@1" in out and "pushed to the DVC remote: yes" in out, out
    _run("git", "add", "-A", cwd=root)
    _run("git", "commit", "-qm", "reviews@1", cwd=root)
    pointer = yaml.safe_load((root / "data/datasets/reviews/v1.csv.dvc").read_text())
    return str(pointer["outs"][0]["md5"])


def _loads_without_credentials(cwd) -> None:
    """A fresh process with no S3 credentials loads the production model: the tracking server
    (MLFLOW_TRACKING_URI, inherited) hands it the files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(S3_ENV)}
    code = (
        "import mlflow, pandas as pd; "
        f"m = mlflow.pyfunc.load_model('models:/{MODEL}@production'); "
        "print(m.predict(pd.DataFrame({'text': ['great value, works well']})).to_json())"
    )
    out = _run(sys.executable, "-c", code, cwd=cwd, env=env)
    predicted = json.loads(out.strip().splitlines()[-1])
    assert set(predicted["label"].values()) <= {"negative", "neutral", "positive"}, out


def _doctor_checks_the_buckets(project, s3) -> None:
    """`doctor`'s checks: the DVC remote's bucket is there; a missing artifact bucket is named,
    with the command that makes it."""
    from modelyard.orchestration.doctor import check_dvc_remote, check_s3_artifacts

    bucket = check_dvc_remote(project)
    assert bucket.ok, bucket
    assert f"storage → s3://{s3.bucket}/dvc: bucket {s3.bucket} at" in bucket.detail
    missing = check_s3_artifacts("s3://no-such-bucket/mlflow", s3.endpoint)
    assert missing is not None and not missing.ok
    assert "no bucket no-such-bucket" in missing.detail and "aws s3 mb" in (missing.fix or "")


def _params(path, tiny_params, data):
    """One epoch and no quality floor: where the model ends up is checked, not how good it is."""
    floors = {"gate.min_accuracy": 0.0, "gate.min_macro_f1": 0.0, "gate.min_class_recall": 0.0}
    shrunk = {"model.name": MODEL, "data.path": str(data), "train.epochs": 1, **floors}
    path.write_text(yaml.safe_dump(tiny_params.updated(shrunk).model_dump(mode="json")))
    return path


def test_dataset_versions_and_models_live_in_a_bucket(
    postgres, prefect_api, tmp_path, tiny_params, small_reviews, monkeypatch
):
    from modelyard.orchestration.doctor import check_s3_artifacts
    from modelyard.orchestration.stack import down, up

    server, prefix, _ = postgres
    params = _params(tmp_path / "params.yaml", tiny_params, small_reviews)
    with local_s3(tmp_path / "moto.log") as s3:
        for key, value in s3.env.items():
            monkeypatch.setenv(key, value)
        project = tmp_path / "project"
        md5 = _s3_project(project, s3, {"data": small_reviews, "file": params})
        assert f"dvc/files/md5/{md5[:2]}/{md5[2:]}" in s3.keys("dvc/")
        _doctor_checks_the_buckets(project, s3)

        # A clean clone: no DVC cache of its own, and the original's gone: only S3 has the bytes.
        clone = tmp_path / "clone"
        _run("git", "clone", "-q", str(project), str(clone), cwd=tmp_path)
        shutil.rmtree(project / ".dvc" / "cache")
        assert not (clone / ".dvc" / "cache").exists()

        # `make up` with MODELYARD_STACK_ARTIFACTS=s3://BUCKET/mlflow (only its MLflow server).
        config = stack_config(
            tmp_path / "stack",
            server,
            prefix,
            params,
            services=("mlflow",),
            artifacts=f"s3://{s3.bucket}/mlflow",
        )
        urls = up(config)
        try:
            artifacts = check_s3_artifacts(config.artifacts, s3.endpoint)
            assert artifacts is not None and artifacts.ok, artifacts
            monkeypatch.setenv("MLFLOW_TRACKING_URI", urls["mlflow"])
            monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
            from flows.retrain import retrain

            summary = retrain(params_path=str(params), data_path="reviews@1", data_repo=str(clone))
            assert summary.production_version_after == "1"
            from mlflow import MlflowClient

            version = MlflowClient(urls["mlflow"]).get_model_version_by_alias(MODEL, "production")
            assert version.tags["dataset_md5"] == md5
            stored = s3.keys("mlflow/")
            assert any(key.endswith("/MLmodel") for key in stored), stored
            assert not list((config.root).rglob("MLmodel")), "artifacts written beside the stack"

            _loads_without_credentials(tmp_path)
        finally:
            down(config.root)
