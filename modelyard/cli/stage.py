"""`modelyard stage …`: the DVC pipeline's stages, one command each (dvc.yaml runs them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.cli._common import NOTHING_CHANGED, Typer, noting

app = Typer(
    help="The DVC pipeline's stages (run by `dvc repro`, see dvc.yaml).", no_args_is_help=True
)

_PARAMS_OPTION = typer.Option(help="The params file.")


def _run(stage: str, params: Path) -> Any:
    """Run `stage` of modelyard.orchestration.pipeline on the params; its result."""
    from modelyard.config import load_params

    loaded = load_params(params)
    from modelyard.orchestration import pipeline

    with noting(NOTHING_CHANGED):
        return getattr(pipeline, stage)(loaded)


@app.command("prepare")
def stage_prepare(params: Annotated[Path, _PARAMS_OPTION] = Path("params.yaml")) -> None:
    """Read data.path (and data.test_path), write the train/val/test split as Parquet."""
    splits = _run("prepare", params)
    from modelyard.orchestration.pipeline import PREPARED

    typer.echo(f"prepared {PREPARED}: {splits.sizes()}")


@app.command("validate")
def stage_validate(params: Annotated[Path, _PARAMS_OPTION] = Path("params.yaml")) -> None:
    """Run the expectation suite; Data Docs to build/validation/; exit 1 when it fails."""
    report = _run("validate", params)
    from modelyard.orchestration.pipeline import VALIDATION

    typer.echo(f"validation: {report.summary()}; Data Docs: {VALIDATION}/index.html")


@app.command("train")
def stage_train(params: Annotated[Path, _PARAMS_OPTION] = Path("params.yaml")) -> None:
    """Fine-tune on the prepared split; the model to build/model/."""
    result = _run("train", params).result
    from modelyard.orchestration.pipeline import MODEL

    typer.echo(
        f"trained {MODEL}: best epoch {result.best_epoch}, "
        f"{result.steps} steps in {result.seconds:.1f}s"
    )


@app.command("evaluate")
def stage_evaluate(params: Annotated[Path, _PARAMS_OPTION] = Path("params.yaml")) -> None:
    """Score build/model on the test split; build/metrics.json for `dvc metrics show`."""
    metrics = _run("evaluate", params)
    from modelyard.orchestration.pipeline import METRICS

    typer.echo(f"test accuracy {metrics.accuracy:.4f}, macro-F1 {metrics.macro_f1:.4f} → {METRICS}")
