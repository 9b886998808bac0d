"""`modelyard retrain` (the retrain flow, here or on its deployment) and `modelyard train` (the
DVC pipeline's fine-tuning, on N processes)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from modelyard.cli._common import (
    NOTHING_CHANGED,
    SET_HELP,
    Refused,
    load_params_with,
    noting,
    parse_overrides,
)

if TYPE_CHECKING:
    from modelyard.config import Params
    from modelyard.report import RetrainSummary

NOTHING_TRAINED = "Nothing was trained, registered or promoted."


def retrain(
    params: Annotated[Path, typer.Option(help="The params file.")] = Path("params.yaml"),
    data: Annotated[
        str | None,
        typer.Option(
            help="A dataset file, or a version NAME@VERSION (reviews@2, reviews@latest, "
            "reviews@<md5 "
            "prefix>, reviews@<git rev>). Default: data.path."
        ),
    ] = None,
    data_repo: Annotated[
        str | None,
        typer.Option(
            help="Read NAME@VERSION from this repository (path or git URL) instead of this project."
        ),
    ] = None,
    set_: Annotated[list[str], typer.Option("--set", help=SET_HELP)] = [],  # noqa: B006 - typer's way to declare a repeatable option; never mutated
    remote: Annotated[
        bool,
        typer.Option(
            "--remote", help="Run the `retrain/retrain` deployment on its work pool and follow it."
        ),
    ] = False,
) -> None:
    """Run the retrain flow: validate, train, evaluate vs production, gate, register, promote."""
    overrides = parse_overrides(set_)
    loaded = _checked_params(params, overrides)
    # A bad file or an unknown version is refused in a second, before Prefect starts a server.
    _check_training_input(loaded, data, data_repo, remote)
    if remote:
        from modelyard.cli._follow import retrain_remote

        retrain_remote(params, data, data_repo, overrides)
        return
    from flows.retrain import retrain as retrain_flow
    from modelyard.report import print_summary

    summary = retrain_flow(
        params_path=str(params), data_path=data, overrides=overrides or None, data_repo=data_repo
    )
    print_summary(cast("RetrainSummary", summary))  # its value: called without return_state


def _checked_params(path: Path, overrides: dict[str, Any]) -> Params:
    """The params with their overrides, checked against this machine (exit 2 otherwise)."""
    from modelyard.orchestration.preflight import preflight

    try:
        loaded = load_params_with(path, overrides)
        preflight(loaded)
    except (ValueError, KeyError, FileNotFoundError) as error:
        raise Refused(str(error), code=2) from None
    return loaded


def _check_training_input(
    params: Params, data: str | None, data_repo: str | None, remote: bool
) -> None:
    from modelyard.adapters.training_input import check_training_input
    from modelyard.config import Settings

    with noting(NOTHING_TRAINED):
        check_training_input(
            params, data, data_repo, remote, Path.cwd(), Settings().dataset_cache()
        )


def train(
    nproc: Annotated[
        int, typer.Option(help="Processes under torchrun (one per GPU; gloo on CPUs).")
    ] = 1,
    params: Annotated[Path, typer.Option(help="The params file.")] = Path("params.yaml"),
) -> None:
    """Fine-tune on the prepared split (build/prepared) into build/model, on N processes."""
    from modelyard.config import load_params

    loaded = load_params(params).updated({"train.nproc": nproc})
    from modelyard.orchestration import pipeline

    with noting(NOTHING_CHANGED):
        result = pipeline.train(loaded)
    typer.echo(
        f"trained {pipeline.MODEL} on {nproc} process(es): {result.result.steps} steps, "
        f"best epoch {result.result.best_epoch}, {result.result.samples_per_second:.0f} "
        "samples/s"
    )
