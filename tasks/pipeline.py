"""The DVC pipeline's outputs from a retrain that reproduced it (`make run` on a fresh clone)."""

from __future__ import annotations

import shutil
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelyard.adapters.dvc_pipeline import Recorded, StageOutput, record_outputs
from modelyard.data.dataset import Splits
from modelyard.orchestration import pipeline


@task(name="record-pipeline-outputs", cache_policy=NO_CACHE)
def record_pipeline_outputs(root: Path | None, splits: Splits, model_dir: Path) -> Recorded | None:
    """In the project whose `dvc.yaml` this run reproduced (`root`; None: another run), its
    split and model become the prepare and train stages' cached outputs when DVC finds them
    identical to `dvc.lock`, so `dvc status` has nothing left to do."""
    if root is None:
        return None
    # The stage functions of pipeline.py carry dvc.yaml's stage names.
    outputs = (
        StageOutput(pipeline.prepare.__name__, str(pipeline.PREPARED), splits.save),
        StageOutput(
            pipeline.train.__name__,
            str(pipeline.MODEL),
            lambda target: shutil.copytree(model_dir, target),
        ),
    )
    recorded = record_outputs(root, outputs)
    logger = get_run_logger()
    if recorded.outputs:
        logger.info(
            "DVC pipeline: %s in the DVC cache (identical to dvc.lock)", ", ".join(recorded.outputs)
        )
    if recorded.stopped is not None:
        logger.info("DVC pipeline outputs left to `dvc repro`: %s", recorded.stopped)
    return recorded
