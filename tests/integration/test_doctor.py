"""`modelyard doctor` against endpoints that answer and endpoints that do not."""

from __future__ import annotations

from typer.testing import CliRunner

from tests.helpers.servers import free_port


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
    assert "schema at 0001, migrated to 0005 on first use" in out
