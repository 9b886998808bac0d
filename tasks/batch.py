from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelyard.adapters.batch import Manifest, load_manifest, pinned_version, score_chunks, start
from modelyard.registry.mlflow_registry import MlflowRegistry


@task(name="plan-batch", cache_policy=NO_CACHE)
def plan_batch(
    registry: MlflowRegistry,
    name: str,
    alias: str,
    version: str | None,
    frame: pd.DataFrame,
    input_spec: str,
    digest: str,
    text_column: str,
    chunk_rows: int,
    parts: Path,
) -> tuple[Manifest, int]:
    """The work and the model version: the one an interrupted run of the same work pinned,
    else `version`, else the alias's current one. Also how many chunks are already done."""
    logger = get_run_logger()
    pinned = pinned_version(load_manifest(parts), digest, chunk_rows, text_column, version)
    if pinned is not None:
        logger.info("resuming: %s version %s, as the interrupted run started", name, pinned)
    version = pinned or version or registry.alias_version(name, alias)
    if version is None:
        raise LookupError(
            f"{name}@{alias} does not exist: train and promote a model first, "
            "or name one with --version"
        )
    manifest = Manifest(input_spec, digest, len(frame), text_column, chunk_rows, name, version)
    done = start(parts, manifest)
    logger.info(
        "%d rows in %d chunks of %d; %d already done", len(frame), manifest.chunks, chunk_rows, done
    )
    return manifest, done


@task(name="score-chunks", cache_policy=NO_CACHE)
def score(
    registry: MlflowRegistry,
    manifest: Manifest,
    frame: pd.DataFrame,
    parts: Path,
    batch_size: int,
    progress: bool,
) -> int:
    """Every chunk not yet written, through the same batched inference as the server."""
    from tqdm import tqdm

    classifier = registry.load_classifier(manifest.model, version=manifest.version)
    logger = get_run_logger()
    with tqdm(total=manifest.rows, unit="rows", disable=not progress) as bar:

        def on_chunk(index: int, rows: int, skipped: bool) -> None:
            bar.update(rows)
            if not progress:
                logger.info(
                    "chunk %d: %d rows %s", index, rows, "already done" if skipped else "scored"
                )

        return score_chunks(classifier, frame, manifest, parts, batch_size, on_chunk)
