"""`modelyard serve`: the REST model server, following an alias as it moves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli._common import registry

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
GRACEFUL_SHUTDOWN_S = 30


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
    access_log: Annotated[
        bool, typer.Option(help="Log a line per request (uvicorn's access log).")
    ] = False,
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


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or taskset's cpuset),
    not the machine's: torch's default counts every core and oversubscribes a limited one."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows: no affinity to read
        return max(1, os.cpu_count() or 1)


def use_cores() -> None:
    """One inference thread per usable core (a forward pass at a time runs: see the batcher),
    unless the user exported OMP_NUM_THREADS."""
    import os

    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(usable_cores())
