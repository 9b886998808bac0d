"""Batch prediction: read → pick the model version → score chunk by chunk (resumable) → write."""

from __future__ import annotations

from typing import Any

from prefect import flow

from modelyard.adapters.batch import check_output, finish, parts_dir, read_input, screen_input
from modelyard.config import Settings, load_params
from modelyard.registry.mlflow_registry import MlflowRegistry
from tasks.batch import plan_batch, score


@flow(name="batch-predict", log_prints=True)
def batch_predict(
    input: str,
    output: str,
    params_path: str = "params.yaml",
    alias: str = "production",
    version: str | None = None,
    text_column: str | None = None,
    chunk_rows: int = 10000,
    progress: bool = False,
    replace: bool = False,
    skip_invalid: bool = False,
) -> dict[str, Any]:
    """Score `input` (a file, or `sql:TABLE` in the platform database) with
    `models:/<model.name>@<alias>` (or `version`) into `output` (same forms). An existing output
    is replaced (atomically) only with `replace`; the platform's own tables never are. A row
    whose text is empty or not text is refused, or left out with `skip_invalid` (the result's
    `skipped` lists the file's numbers of those rows)."""
    params = load_params(params_path)
    settings = Settings()
    database = settings.resolved_database_url()
    check_output(output, database, replace)
    frame, digest = read_input(input, database, params.data)
    column = text_column or params.data.text_column
    screened = screen_input(frame, input, column, skip_invalid)
    frame = screened.frame
    registry = MlflowRegistry.from_settings(settings)
    parts = parts_dir(output, settings.home.resolve())
    manifest, _ = plan_batch(
        registry, params.model.name, alias, version, frame, input, digest, column, chunk_rows, parts
    )
    resumed = score(registry, manifest, frame, parts, params.serving.max_batch_size, progress)
    rows = finish(parts, output, database, replace)
    return {
        "input": input,
        "output": output,
        "rows": rows,
        "model": manifest.model,
        "version": manifest.version,
        "chunks_resumed": resumed,
        "skipped": screened.skipped,
        "skipped_unit": screened.unit,
    }
