"""The model card of the session's tiny retrain (issue 22.1): each field against the store it came
from (the version's tags, its run's params, metrics, inputs and artifacts, the audit trail), the
logged Markdown and HTML, a refresh on an alias move, and `modelyard models card`. Reads the
shared `tiny_production`; the alias move works on a copy of its home."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from modelyard import tags
from tests.helpers.html_reports import assert_self_contained
from tests.helpers.models import TINY_MODEL
from tests.helpers.stores import copy_home

pytestmark = pytest.mark.slow

NAME = TINY_MODEL


def _stores(home: Path):
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.store.audit import AuditLog

    registry = MlflowRegistry(f"sqlite:///{home.resolve()}/mlflow.db", "modelyard")
    return registry, AuditLog.from_url(f"sqlite:///{home.resolve()}/modelyard.db")


def _logged(registry, run_id: str, path: str, into: Path) -> str:
    return registry.download_artifact(run_id, path, into).read_text(encoding="utf-8")


def test_each_field_of_the_card_is_what_its_store_recorded(tiny_production, tmp_path):
    from modelyard.adapters.cards import gather

    registry, audit = _stores(tiny_production.home)
    version = registry.client.get_model_version(NAME, "1")
    run = registry.client.get_run(version.run_id)
    m, p, v = run.data.metrics, run.data.params, version.tags
    facts = gather(registry, audit, NAME, "1")
    # the registry's tags
    assert facts.data.md5 == v[tags.DATASET_MD5] and facts.data.path == v[tags.DATASET_PATH]
    assert facts.data.validation == v[tags.VALIDATION] == "passed"
    assert facts.training.params_hash == v[tags.PARAMS_HASH]
    assert facts.evaluation.gate.verdict == v[tags.GATE_DECISION]
    assert facts.runtime.chosen["cpu"] == v[tags.RUNTIME]
    assert set(facts.aliases) == set(version.aliases) == {tags.STAGING, tags.PRODUCTION}
    # the run's params and inputs
    assert facts.card.owner == p["card.owner"] and facts.card.out_of_scope
    assert facts.training.backbone == p["model.backbone"] == "tiny"
    assert facts.data.splits == {s: int(p[f"split.{s}"]) for s in ("train", "val", "test")}
    mix = facts.data.class_mix
    assert {s: sum(mix[s].values()) for s in ("train", "test")} == {
        "train": int(p["split.train"]),
        "test": int(p["split.test"]),
    }
    assert {i.digest for i in facts.data.inputs} == {
        d.dataset.digest for d in run.inputs.dataset_inputs
    }
    # the run's metrics
    assert facts.evaluation.metrics["accuracy"] == m[f"{tags.TEST}accuracy"]
    assert facts.evaluation.calibration.ece == m[f"{tags.CALIBRATION}ece"]
    assert facts.training.compute["cost"] == m[f"{tags.COMPUTE_TOTAL}cost"]
    assert facts.training.steps == int(m[tags.TRAIN_STEPS])
    assert (
        facts.data.validation_figures["rows_in_smallest_class"]
        == m[f"{tags.DATA}rows_in_smallest_class"]
    )
    # the audit trail: every move of version 1
    moves = [(x.alias, x.from_version, x.to_version, x.actor) for x in audit.history(NAME)]
    assert [(x.alias, x.from_version, x.to_version, x.actor) for x in facts.history] == moves
    # the run's artifacts
    report = json.loads(_logged(registry, run.info.run_id, tags.EXPLANATIONS_FILE, tmp_path))
    assert [c.label for c in facts.explanations.classes] == [c["label"] for c in report["classes"]]
    # Logged again first: the session's other tests register this run again as another
    # version in copies of the home, and MLflow (its artifact location cached by run id for the
    # process) logs their cards into this very run.
    from modelyard.adapters.cards import publish

    publish(registry, audit, NAME, "1")
    _the_logged_card_shows_them(registry, run.info.run_id, facts, tmp_path)


def _the_logged_card_shows_them(registry, run_id: str, facts, into: Path) -> None:
    markdown = _logged(registry, run_id, tags.CARD_MARKDOWN, into)
    ece, cost = facts.evaluation.calibration.ece, facts.training.compute["cost"]
    for shown in (
        f"# Model card: {NAME} version 1",
        f"DVC md5 `{facts.data.md5}`",
        f"**Owner**: {facts.card.owner}",
        f"ECE {ece:.4f}",
        f"cost {cost:.4f}",
        f"Chosen to answer: cpu: `{facts.runtime.chosen['cpu']}`",
        "| @production | promote | — → 1 |",
        f"**Gate report**: {facts.evaluation.gate.verdict.upper()}",
    ):
        assert shown in markdown, shown
    html = into / "card.html"
    html.write_text(_logged(registry, run_id, tags.CARD_HTML, into), encoding="utf-8")
    assert_self_contained(html, f"Model card: {NAME} version 1", "<svg", f"ECE {ece:.4f}")


@contextmanager
def _artifacts_of_the_copy(run_id: str) -> Iterator[None]:
    """MLflow's client caches each run's artifact location by run id, process-wide: a copy of a
    home has the same run ids, so without this its writes would land in the original's run."""
    from mlflow.tracking._tracking_service import utils

    utils._artifact_repos_cache.pop(run_id, None)
    try:
        yield
    finally:
        utils._artifact_repos_cache.pop(run_id, None)


def test_an_alias_move_refreshes_the_card_of_the_version_it_touched(tiny_production, tmp_path):
    home = copy_home(tiny_production.home, tmp_path / "home")
    registry, audit = _stores(home)
    run_id = registry.client.get_model_version(NAME, "1").run_id
    with _artifacts_of_the_copy(run_id):
        assert "@reviewed" not in _logged(registry, run_id, tags.CARD_MARKDOWN, tmp_path)
        audit.move(registry, NAME, "reviewed", "1", kind="manual", actor="user:t", reason="ok")
        (tmp_path / "after").mkdir()
        markdown = _logged(registry, run_id, tags.CARD_MARKDOWN, tmp_path / "after")
    assert "| @reviewed | manual | — → 1 | user:t | ok |" in markdown
    # the original's card is untouched
    original, _ = _stores(tiny_production.home)
    (tmp_path / "original").mkdir()
    assert "@reviewed" not in _logged(original, run_id, tags.CARD_MARKDOWN, tmp_path / "original")


def test_models_card_prints_the_card_and_writes_its_html(tiny_production, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from modelyard.cli import app

    monkeypatch.setenv("MODELYARD_HOME", str(tiny_production.home))
    runner = CliRunner()
    page = tmp_path / "card.html"
    result = runner.invoke(app, ["models", "card", NAME, "1", "--html", str(page)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"# Model card: {NAME} version 1\n")
    assert "## History" in result.stdout and "| @production | promote | — → 1 |" in result.stdout
    assert_self_contained(page, f"Model card: {NAME} version 1")
    for args, message in (
        ([NAME, "9"], f"{NAME} has no version 9"),
        (["no-such-model", "1"], "no registered model named 'no-such-model'"),
    ):
        refused = runner.invoke(app, ["models", "card", *args])
        assert refused.exit_code == 1 and message in refused.output, refused.output


def test_the_retrain_shows_the_card_as_a_prefect_artifact(tiny_production):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    registry, _ = _stores(tiny_production.home)
    run = registry.client.get_run(tiny_production.summary.mlflow_run_id)
    flow_run_id = run.data.tags[tags.RUN_FLOW_RUN_ID]
    with get_client(sync_client=True) as prefect:
        found = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[f"model-card-{NAME}"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            )
        )
    # At registration (no alias yet), then after the promotion, with its moves.
    assert len(found) == 2
    latest = max(found, key=lambda artifact: artifact.created)
    assert latest.type == "markdown" and latest.data.startswith(f"# Model card: {NAME} version 1")
    assert "| @production | promote | — → 1 |" in latest.data
