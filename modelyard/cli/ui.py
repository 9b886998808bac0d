"""`modelyard ui`: the MLflow UI on the embedded store."""

from __future__ import annotations

from typing import Annotated

import typer


def ui(port: Annotated[int, typer.Option(help="Port for the MLflow UI.")] = 5000) -> None:
    """Open the MLflow UI on the embedded store."""
    import os
    import shutil

    from modelyard.config import Settings

    uri = Settings().resolved_tracking_uri()
    mlflow = shutil.which("mlflow") or "mlflow"
    os.execv(mlflow, [mlflow, "ui", "--backend-store-uri", uri, "--port", str(port)])
