"""`modelyard serve`: the REST model server, following an alias as it moves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli._common import registry

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
GRACEFUL_SHUTDOWN_S = 30


_AccessLog = Annotated[bool, typer.Option(help="Log a line per request (uvicorn's access log).")]


def serve(
    params: Annotated[Path, typer.Option(help="The params file (model.name, serving).")] = Path(
        "params.yaml"
    ),
    alias: Annotated[
        str | None, typer.Option(help="The alias to follow (default: serving.alias).")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the server to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    require_keys: Annotated[
        bool | None,
        typer.Option(
            "--require-keys/--no-require-keys",
            help="/predict, /explain and /feedback need an API key with their scope (default: "
            "serving.require_keys).",
        ),
    ] = None,
    access_log: _AccessLog = False,
) -> None:
    """Serve models:/<model.name>@<alias> over REST, following the alias as it moves."""
    import logging

    import uvicorn

    from modelyard.config import Settings, load_params
    from modelyard.serving.app import create_app

    loaded = load_params(params)
    given = {"alias": alias, "require_keys": require_keys}
    serving = loaded.serving.model_copy(update={k: v for k, v in given.items() if v is not None})
    settings = Settings()
    use_cores()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if host not in _LOOPBACK:
        logging.getLogger("modelyard.serving").warning(
            "binding %s: the server is reachable from other machines", host
        )
    application = create_app(
        lambda: registry(settings),
        loaded.model.name,
        serving,
        settings.resolved_database_url(),
        settings.admin_token,
        loaded.privacy,
        loaded.explain,
        loaded.rollout,
    )
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level="info",
        access_log=access_log,
        # On SIGTERM/SIGINT: stop accepting, answer what is in flight (up to this long), then
        # flush the prediction log.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


def use_cores() -> None:
    """One torch thread per core this process may use (its CPU affinity: a container's or
    taskset's cpuset; torch's default counts every core of the machine and oversubscribes a
    limited one), unless the user exported OMP_NUM_THREADS. One forward pass runs at a time
    (see the batcher), so it may have them all; ONNX Runtime sessions size themselves alike."""
    import os

    import torch

    from modelyard.inference.runtime import usable_cores

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(usable_cores())
