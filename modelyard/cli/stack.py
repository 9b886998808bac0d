"""`modelyard stack …`: production mode on one machine (Prefect and MLflow servers on
PostgreSQL, a worker, the model server), started, shown and stopped."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli._common import Refused, Typer

if TYPE_CHECKING:
    from modelyard.orchestration.stack import StackConfig

app = Typer(
    help="Production mode on one machine: Prefect and MLflow servers on PostgreSQL, a "
    "worker, the model server.",
    no_args_is_help=True,
)

_STACK_ROOT = typer.Option(help="Where the stack keeps its state, logs and artifacts.")


@app.command("up")
def stack_up(
    root: Annotated[Path, _STACK_ROOT] = Path(".modelyard/stack"),
    params: Annotated[Path, typer.Option(help="The params file the model server reads.")] = Path(
        "params.yaml"
    ),
    deploy_flows: Annotated[
        bool,
        typer.Option("--deploy/--no-deploy", help="Deploy the flows on the stack's work pool."),
    ] = True,
) -> None:
    """Start the stack (supervised, in the background) and print its URLs and exports; when one
    is already running from ROOT, say so and print its."""
    from modelyard.config import load_params
    from modelyard.orchestration.stack import running, supervisor_pid, up

    current = running(root.resolve())
    if current is not None:
        typer.echo(
            f"a stack is already running from {current.root} (supervisor pid "
            f"{supervisor_pid(current.root)}); nothing started. `modelyard stack down` "
            "stops it.",
            err=True,
        )
        load_params(current.params)
        _print_stack(current)
        return
    load_params(params)
    config = _config(root, params, os.environ)
    try:
        up(config)
    except Exception as error:  # noqa: BLE001 - one line for the person at the terminal
        raise Refused(str(error)) from None
    if deploy_flows:
        _deploy(config)
    _print_stack(config)


@app.command("env")
def stack_env(root: Annotated[Path, _STACK_ROOT] = Path(".modelyard/stack")) -> None:
    """Print the export lines of the stack running from ROOT: eval "$(modelyard stack env)"."""
    from modelyard.config import load_params
    from modelyard.orchestration.stack import export_lines, running

    config = running(root.resolve())
    if config is None:
        raise Refused(f"no stack is running from {root}: `make up` starts one")
    load_params(config.params)  # the exports name the model its server follows
    for line in export_lines(config.client_env()):
        typer.echo(line)


@app.command("down")
def stack_down(root: Annotated[Path, _STACK_ROOT] = Path(".modelyard/stack")) -> None:
    """Stop exactly what `stack up` started."""
    from modelyard.orchestration.stack import down

    typer.echo("stopped" if down(root.resolve()) else f"no stack is running from {root}")


def _config(root: Path, params: Path, environ: Mapping[str, str]) -> StackConfig:
    """The stack's configuration: ROOT and the params from the command line, the PostgreSQL
    server, the databases' prefix, the ports and the artifact store from MODELYARD_STACK_*."""
    from modelyard.orchestration.stack import PORT_ENV, PREFIX_ENV, StackConfig

    def port(service: str, default: str) -> int:
        return int(environ.get(PORT_ENV.format(service.upper()), default))

    return StackConfig(
        root=root.resolve(),
        params=params.resolve(),
        project=Path.cwd().resolve(),
        postgres=environ.get("MODELYARD_STACK_POSTGRES", "postgresql://postgres@127.0.0.1:5432"),
        # Unset: names of this project's own (see modelyard.orchestration.stack.default_prefix).
        prefix=environ.get(PREFIX_ENV) or None,
        prefect_port=port("prefect", "4200"),
        mlflow_port=port("mlflow", "5000"),
        model_port=port("model", "8000"),
        artifacts=environ.get("MODELYARD_STACK_ARTIFACTS"),
    )


def _deploy(config: StackConfig) -> None:
    """Deploy the flows on the stack's work pool, this process using the stack from now on."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from modelyard.orchestration.deployments import deploy

    env = config.client_env()
    os.environ.update(env)
    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        deploy(Path.cwd(), config.work_pool)


def _print_stack(config: StackConfig) -> None:
    """The URLs, then the export lines a shell needs to use the stack."""
    from modelyard.orchestration.stack import export_lines

    urls = config.urls
    typer.echo(
        f"Prefect UI   {urls['prefect']}\nMLflow UI    {urls['mlflow']}\n"
        f"model API    {urls['model']}/docs\nlogs         {config.root / 'logs'}\n"
        f"databases    {', '.join(config.database_names().values())}\n"
        'use it from this shell with (or: eval "$(modelyard stack env)"):'
    )
    for line in export_lines(config.client_env()):
        typer.echo(f"  {line}")
