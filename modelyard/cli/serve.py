"""`modelyard serve`: the REST model server, following an alias as it moves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli._common import registry

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


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
) -> None:
    """Serve models:/<model.name>@<alias> over REST, following the alias as it moves."""
    import logging

    import uvicorn

    from modelyard.config import Settings, load_params
    from modelyard.serving.app import create_app

    loaded = load_params(params)
    serving = (
        loaded.serving if alias is None else loaded.serving.model_copy(update={"alias": alias})
    )
    settings = Settings()
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
    uvicorn.run(application, host=host, port=port, log_level="info")
