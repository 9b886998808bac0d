"""The commands that serve the two UIs of the embedded default (`modelyard ui`, `make ui`).

Prefect's UI asks its API at PREFECT_UI_API_URL, which defaults to port 4200 whatever port the
server listens on ("Can't connect to Server API" elsewhere): it is set to the server's own.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def _bin(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name) or name


def prefect_ui_env(host: str, port: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a Prefect server whose UI calls its own API on `port`."""
    env = dict(os.environ if base is None else base)
    env.pop("PREFECT_API_URL", None)  # the server serves; it is nobody's client here
    env["PREFECT_UI_API_URL"] = f"http://{host}:{port}/api"
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    return env


def ui_commands(
    host: str, mlflow_port: int, prefect_port: int
) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Per UI: argv and environment. The MLflow UI reads the store retrains write to (or a
    tracking server's URI, which it then proxies); Prefect's serves this PREFECT_HOME's runs."""
    from modelyard.config import Settings

    uri = Settings().resolved_tracking_uri()
    mlflow = [_bin("mlflow"), "ui", "--backend-store-uri", uri]
    commands = {
        "mlflow": (
            [*mlflow, "--host", host, "--port", str(mlflow_port), "--workers", "1"],
            dict(os.environ),
        )
    }
    if prefect_port:
        argv = [_bin("prefect"), "server", "start", "--host", host, "--port", str(prefect_port)]
        commands["prefect"] = (argv, prefect_ui_env(host, prefect_port))
    return commands
