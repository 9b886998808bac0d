"""`modelyard ui`: the MLflow UI on the embedded store and the Prefect UI on the runs this
checkout made, side by side, on any ports."""

from __future__ import annotations

from typing import Annotated

import typer


def ui(
    port: Annotated[int, typer.Option(help="Port for the MLflow UI.")] = 5000,
    prefect_port: Annotated[
        int, typer.Option(help="Port for the Prefect UI (0: MLflow's UI only).")
    ] = 4200,
    host: Annotated[str, typer.Option(help="Address both listen on.")] = "127.0.0.1",
) -> None:
    """Open the MLflow UI on the embedded store and the Prefect UI on this checkout's
    PREFECT_HOME (the embedded runs); Ctrl-C stops both."""
    import subprocess

    from modelyard.orchestration.ui import ui_commands

    started = []
    try:
        for name, (argv, env) in ui_commands(host, port, prefect_port).items():
            typer.echo(f"{name}: http://{host}:{port if name == 'mlflow' else prefect_port}")
            started.append(subprocess.Popen(argv, env=env))
        for process in started:
            process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait()
