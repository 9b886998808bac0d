"""`modelyard …`: only typer at import time, so `--help` answers at once; each command imports
what it needs when it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="ModelYard: version, validate, train, gate, register and promote models.",
                  no_args_is_help=True, add_completion=False)
data_app = typer.Typer(help="Datasets: the default dataset, DVC versions.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _parse_overrides(pairs: list[str]) -> dict[str, Any]:
    import yaml

    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--set expects KEY=VALUE, got {pair!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


@app.command()
def retrain(
    params: Annotated[Path, typer.Option(help="The params file.")] = Path("params.yaml"),
    data: Annotated[Path | None, typer.Option(help="Dataset file (default: data.path).")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a param: train.epochs=1")] = [],
) -> None:
    """Run the retrain flow: validate, train, evaluate vs production, gate, register, promote."""
    from rich.console import Console
    from rich.markup import escape

    from modelyard.config import ConfigError, load_params
    from modelyard.data.dataset import DatasetError
    from modelyard.data.validation import DataValidationError

    from modelyard.env import apply_defaults

    apply_defaults()
    console = Console(stderr=True)
    overrides = _parse_overrides(set_)
    try:
        loaded = load_params(params)
        if overrides:
            loaded.updated(overrides)
    except (ConfigError, ValueError, KeyError) as error:
        console.print(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(2) from None

    from flows.retrain import retrain as retrain_flow

    try:
        summary = retrain_flow(
            params_path=str(params), data_path=str(data) if data else None,
            overrides=overrides or None,
        )
    except (DataValidationError, DatasetError, FileNotFoundError) as error:
        console.print(f"[red]error:[/] {escape(str(error))}\nNothing was trained, registered or promoted.")
        raise typer.Exit(1) from None
    from modelyard.report import print_summary

    print_summary(summary)


@data_app.command("prepare")
def data_prepare(
    params: Annotated[Path, typer.Option(help="The params file.")] = Path("params.yaml"),
) -> None:
    """Make the default dataset present, in DVC's cache and in the DVC remote."""
    from modelyard.config import load_params
    from modelyard.data.default import prepare_default_dataset
    from modelyard.env import apply_defaults

    apply_defaults()
    path = load_params(params).data.path
    how = prepare_default_dataset(Path.cwd(), path)
    typer.echo(f"{path}: {how}; tracked by DVC and pushed to the default remote")


@app.command()
def ui(port: Annotated[int, typer.Option(help="Port for the MLflow UI.")] = 5000) -> None:
    """Open the MLflow UI on the embedded store."""
    import os
    import shutil

    from modelyard.config import Settings

    uri = Settings().resolved_tracking_uri()
    mlflow = shutil.which("mlflow") or "mlflow"
    os.execv(mlflow, [mlflow, "ui", "--backend-store-uri", uri, "--port", str(port)])


def main() -> None:
    app()
if __name__ == "__main__":
    main()
