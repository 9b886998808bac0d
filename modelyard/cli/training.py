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
NOTHING_REPEATED = "Nothing was trained, registered or moved (--force trains anyway)."


_Data = Annotated[
    str | None,
    typer.Option(
        help="A dataset file, or a version NAME@VERSION (reviews@2, reviews@latest, "
        "reviews@<md5 prefix>, reviews@<git rev>). Default: data.path."
    ),
]
_DataRepo = Annotated[
    str | None,
    typer.Option(
        help="Read NAME@VERSION from this repository (path or git URL) instead of this project."
    ),
]
_Remote = Annotated[
    bool,
    typer.Option(
        "--remote", help="Run the `retrain/retrain` deployment on its work pool and follow it."
    ),
]
_Deployment = Annotated[
    str,
    typer.Option(
        help="With --remote: the retrain flow's deployment, e.g. retrain-gpu (the gpu pool: "
        "train.nnodes pods of train.nproc GPUs each)."
    ),
]
_Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Train even when a registered version has this run's lineage key (dataset md5, "
        "params hash, clean git commit, environment): by default such a run trains nothing.",
    ),
]


def retrain(
    params: Annotated[Path, typer.Option(help="The params file.")] = Path("params.yaml"),
    data: _Data = None,
    data_repo: _DataRepo = None,
    set_: Annotated[list[str], typer.Option("--set", help=SET_HELP)] = [],  # noqa: B006 - typer's way to declare a repeatable option; never mutated
    remote: _Remote = False,
    deployment: _Deployment = "retrain",
    force: _Force = False,
) -> None:
    """Run the retrain flow: validate, train, evaluate vs production, gate, register, promote.
    A run that would repeat a registered version says which and trains nothing."""
    overrides = parse_overrides(set_)
    loaded = _checked_params(params, overrides)
    # A bad file or an unknown version is refused in a second, before Prefect starts a server.
    _check_training_input(loaded, data, data_repo, remote)
    if remote:
        from modelyard.cli._follow import retrain_remote

        size = (loaded.train.nnodes, loaded.train.nproc)
        retrain_remote(params, data, data_repo, overrides, deployment, size, force)
        return
    from flows.retrain import retrain as retrain_flow
    from modelyard.lineage_key import Repeat
    from modelyard.report import print_summary

    summary = retrain_flow(
        params_path=str(params),
        data_path=data,
        overrides=overrides or None,
        data_repo=data_repo,
        force=force,
    )
    if isinstance(summary, Repeat):
        typer.echo(f"{loaded.model.name}: {summary.line()}. {NOTHING_REPEATED}")
        return
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
    nnodes: Annotated[
        int | None,
        typer.Option(
            min=1, help="Machines, each running --nproc processes. Default: train.nnodes."
        ),
    ] = None,
    node_rank: Annotated[
        int,
        typer.Option(
            min=0,
            help="This machine's rank: 0 reads the data and params, saves the model; the others "
            "train on what node 0 sends them and write nothing.",
        ),
    ] = 0,
    rdzv_endpoint: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT where the machines meet (c10d), the same on every node. "
            "Default: MODELYARD_RDZV_ENDPOINT."
        ),
    ] = None,
) -> None:
    """Fine-tune on the prepared split (build/prepared) into build/model, on N processes (on
    each of --nnodes machines: run it on every machine, each with its --node-rank)."""
    from modelyard.config import Settings, load_params

    endpoint = rdzv_endpoint or Settings().rdzv_endpoint
    if node_rank > 0:  # node 0 sends the data and params: a joiner reads params.yaml only for
        # train.nnodes, when --nnodes does not say
        count = nnodes if nnodes is not None else load_params(params).train.nnodes
        _join(nproc, count, node_rank, endpoint)
        return
    loaded = load_params(params).updated({"train.nproc": nproc})
    if nnodes is not None:
        loaded = loaded.updated({"train.nnodes": nnodes})
    from modelyard.orchestration import pipeline

    with noting(NOTHING_CHANGED):
        result = pipeline.train(loaded, rendezvous=endpoint)
    typer.echo(
        f"trained {pipeline.MODEL} on {nproc} process(es) × {loaded.train.nnodes} node(s): "
        f"{result.result.steps} steps, best epoch {result.result.best_epoch}, "
        f"{result.result.samples_per_second:.0f} samples/s"
    )


def _join(nproc: int, nnodes: int, node_rank: int, endpoint: str | None) -> None:
    """Node `node_rank` of a multi-node training that node 0 (`modelyard train` or a retrain)
    leads: nothing read here, nothing written."""
    from modelyard.training import distributed

    try:
        nodes = distributed.Nodes(nnodes, node_rank, endpoint)
    except ValueError as error:
        raise Refused(str(error), code=2) from None
    with noting(NOTHING_CHANGED):
        distributed.join(nproc, nodes)
    typer.echo(f"node {node_rank} of {nnodes}: trained its share; node 0 saved the model")
