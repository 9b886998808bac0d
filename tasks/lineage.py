"""Nothing done twice, as Prefect tasks: the retrain's lineage key, and the version it would
repeat (`modelyard.adapters.repeats`)."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from modelyard.adapters.repeats import repeat_of
from modelyard.config import DataParams, Params
from modelyard.data.identity import DatasetVersion
from modelyard.lineage_key import LineageKey, Repeat, environment
from modelyard.orchestration.runs import artifact_key
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.registry.tracking import code_commit


@task(name="lineage-key", cache_policy=NO_CACHE)
def lineage_key(params: Params, dataset: DatasetVersion) -> LineageKey:
    """The dataset, the params hash, the code's git commit and this machine's environment."""
    key = LineageKey(
        dataset, params.digest(), code_commit(dataset.git_commit), environment(params.train)
    )
    get_run_logger().info("lineage key %s (code %s)", key.value or "none", key.code_commit)
    return key


@task(name="find-repeat", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def find_repeat(
    registry: MlflowRegistry,
    name: str,
    key: LineageKey,
    frame: pd.DataFrame,
    test: pd.DataFrame | None,
    params: DataParams,
) -> Repeat:
    """The version this retrain would make again (a Prefect artifact says so), or why it
    trains."""
    repeat = repeat_of(registry, name, key, frame, test, params)
    logger = get_run_logger()
    if repeat.version is None:
        logger.info("%s", repeat.line())
        return repeat
    logger.info("%s: %s; nothing trained, registered or moved", name, repeat.line())
    create_markdown_artifact(
        key=artifact_key("repeat", name),
        markdown=f"**{name}**: {repeat.line()}.\n\nThe dataset (md5 `{key.dataset.md5}`), "
        f"params hash `{key.params_hash}`, code commit `{key.code_commit}` and environment "
        f"are the ones that version recorded (lineage key `{key.value}`): nothing was "
        "trained, registered or moved. `modelyard retrain --force` (flow parameter "
        "`force`) trains anyway.",
        description=f"{name}: this retrain repeats version {repeat.version.version}",
    )
    return repeat
