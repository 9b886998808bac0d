"""Nothing connects or writes at import time, and the CLI starts without heavy imports."""

import subprocess
import sys


def run(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_importing_everything_writes_nothing(tmp_path):
    code = (
        "import importlib, pkgutil, modelyard, tasks, flows\n"
        "for pkg in (modelyard, tasks, flows):\n"
        "    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if info.name != 'modelyard.registry.pyfunc_entry':\n"
        "            importlib.import_module(info.name)\n"
        "import flows.retrain\n"
    )
    result = run(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_imports_no_heavy_modules(tmp_path):
    result = run(
        "import sys, modelyard.cli\n"
        "heavy = {'torch', 'transformers', 'prefect', 'mlflow', 'great_expectations', 'dvc',"
        " 'pandas', 'sklearn'} & set(m.split('.')[0] for m in sys.modules)\n"
        "print(sorted(heavy))\n",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_cli_help_lists_commands(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "modelyard.cli", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for command in ("retrain", "data", "ui"):
        assert command in result.stdout


def test_cli_rejects_bad_params_before_any_work(tmp_path):
    from typer.testing import CliRunner

    from modelyard.cli import app

    params = tmp_path / "params.yaml"
    params.write_text("train:\n  epochs: 0\n")
    result = CliRunner().invoke(app, ["retrain", "--params", str(params)])
    assert result.exit_code == 2
    assert "train.epochs" in result.output
    good = tmp_path / "good.yaml"
    good.write_text("")
    result = CliRunner().invoke(app, ["retrain", "--params", str(good), "--set", "train.epochs"])
    assert result.exit_code != 0 and "KEY=VALUE" in result.output
    result = CliRunner().invoke(app, ["retrain", "--params", str(good), "--set", "train.bogus=1"])
    assert result.exit_code == 2 and "train.bogus" in result.output
