"""`modelyard doctor` against endpoints that answer and endpoints that do not."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.helpers.paths import REPO
from tests.helpers.servers import free_port

REPO_PARAMS = REPO / "params.yaml"


def test_doctor_names_what_is_wrong_and_how_to_fix_it(tmp_path, monkeypatch, repo):
    from modelyard.cli import app

    dead = free_port()  # nothing listens there
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{dead}")
    monkeypatch.setenv("COLUMNS", "250")
    # Prefect reads its settings once per process: set them the way it sees them.
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{dead}/api"}):
        result = CliRunner().invoke(app, ["doctor"])
    out = " ".join(result.output.split())
    assert result.exit_code == 1, out
    assert "mlflow │ FAIL │ ConnectError" in out and "start the tracking server" in out
    assert "prefect │ FAIL │ ConnectError" in out and "unset PREFECT_API_URL" in out
    assert "database │ ok │" in out and "(created and migrated on first use)" in out
    assert "params │ ok │ params.yaml: model modelyard-reviews" in out
    assert not (tmp_path / "modelyard.db").exists()  # looking created nothing

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    from modelyard.store.db import upgrade

    upgrade(f"sqlite:///{tmp_path}/modelyard.db", "0001")
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = CliRunner().invoke(app, ["doctor"])
    out = " ".join(result.output.split())
    assert result.exit_code == 0, out
    assert "schema at 0001, migrated to 0007 on first use" in out


@pytest.mark.slow
def test_doctor_checks_the_buckets_of_the_dvc_remote_and_the_mlflow_artifacts(
    tmp_path, monkeypatch
):
    """A DVC remote and an MLflow artifact store on S3 (a local S3 server, moto's): the bucket
    that exists is listed, the one that does not is named, with the command that makes it."""
    import subprocess
    import sys

    from modelyard.cli import app
    from tests.helpers.s3 import local_s3

    with local_s3(tmp_path / "moto.log") as s3:
        for key, value in s3.env.items():
            monkeypatch.setenv(key, value)
        # Made by DVC's CLI in processes of their own: DVC's logger in this process may still
        # hold an earlier CliRunner's closed stream.
        project = tmp_path / "project"
        project.mkdir()
        dvc = (sys.executable, "-m", "dvc")
        for args in (
            ("git", "init", "-q"),
            (*dvc, "init", "-q"),
            (*dvc, "remote", "add", "-d", "storage", f"s3://{s3.bucket}/dvc"),
            (*dvc, "remote", "modify", "storage", "endpointurl", s3.endpoint),
        ):
            subprocess.run(args, cwd=project, check=True, capture_output=True)
        s3.client().put_object(Bucket=s3.bucket, Key="dvc/files/md5/00/11", Body=b"x")
        monkeypatch.chdir(project)
        monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("MODELYARD_STACK_ARTIFACTS", "s3://no-such-bucket/mlflow")
        monkeypatch.setenv("COLUMNS", "250")
        (project / "params.yaml").write_text((REPO_PARAMS).read_text())
        result = CliRunner().invoke(app, ["doctor"])
    out = " ".join(result.output.split())
    assert result.exit_code == 1, out
    assert (
        f"dvc remote │ ok │ storage → s3://{s3.bucket}/dvc: bucket {s3.bucket} at "
        f"{s3.endpoint}, 1 object(s) under dvc" in out
    )
    assert "mlflow artifacts │ FAIL │ s3://no-such-bucket/mlflow: no bucket no-such-bucket" in out
    assert "aws s3 mb s3://no-such-bucket" in out
