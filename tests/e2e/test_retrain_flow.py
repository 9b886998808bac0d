"""The retrain flow end to end on the tiny model, against a real (temporary) Prefect API and a
temporary MLflow store: registry state after a promotion, after a rejection, after bad data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.helpers.lineage import pin_code_commit
from tests.helpers.models import TINY_MODEL, predict_in_fresh_process
from tests.helpers.stores import copy_home

pytestmark = pytest.mark.slow

NAME = TINY_MODEL


@pytest.fixture(scope="module")
def env(tiny_production, monkeypatch_module, small_reviews):
    """Where the session's tiny model was trained: only read here (`fresh` copies it)."""
    home = tiny_production.home
    monkeypatch_module.setenv("MODELYARD_HOME", str(home))
    return {
        "home": home,
        "params": str(tiny_production.params),
        "data": small_reviews,
        "uri": f"sqlite:///{home.resolve()}/mlflow.db",
    }


def audit(env):
    from modelyard.store.audit import AuditLog

    return AuditLog.from_url(f"sqlite:///{env['home'].resolve()}/modelyard.db")


@pytest.fixture(scope="module")
def client(env):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=env["uri"], registry_uri=env["uri"])


@pytest.fixture(scope="module")
def first(tiny_production, env):
    """The summary of the retrain that trained it."""
    return tiny_production.summary


@pytest.fixture
def fresh(first, env, tmp_path):
    """(env, client) of a copy of the stores as the first run left them, for a test that
    retrains on top of it: each such test starts from that state, whatever ran before."""
    from mlflow import MlflowClient

    home = copy_home(env["home"], tmp_path / "home")
    uri = f"sqlite:///{home.resolve()}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELYARD_HOME", str(home))
        yield {**env, "home": home, "uri": uri}, MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_first_run_is_registered_with_lineage_and_promoted(first, env, client):
    assert first.decision.passed and first.version == "1"
    assert first.production_version_before is None
    assert first.production_version_after == first.staging_version == "1"

    version = client.get_model_version_by_alias(NAME, "production")
    assert str(version.version) == "1"
    assert set(version.aliases) == {"production", "staging"}
    md5 = hashlib.md5(env["data"].read_bytes()).hexdigest()
    tags = version.tags
    assert tags["dataset_md5"] == md5 == first.dataset.md5
    assert tags["gate_decision"] == "promote"
    assert tags["gate_report"].startswith("PROMOTE\npass minimum: accuracy")
    # verdict, one line per check, the baselines, the compute cost, how the comparison set was
    # made, then the exported runtimes' parity (this retrain exports: runtime.export)
    lines = tags["gate_report"].splitlines()
    runtime = first.decision.runtime
    assert runtime and len(first.decision.notes) == 1
    assert len(lines) == 3 + len(first.decision.checks) + 1 + len(runtime)
    tail = lines[len(lines) - len(runtime) - 3 :]
    assert tail[0].startswith("info baselines: candidate accuracy ")
    assert tail[1].startswith("info compute: ")
    assert tail[2] == "info comparison: split cut afresh (no production model to inherit from)"
    assert tail[3:] == [f"info runtime: {line}" for line in runtime]
    assert len(tags["split_md5"]) == 32
    assert tags["gate_report_uri"] == f"runs:/{first.mlflow_run_id}/gate/decision.md"
    assert tags["validation"] == "passed"
    assert tags["test_rows"] == str(first.dataset.splits["test"]) != "0"
    assert tags["mlflow_run_id"] == first.mlflow_run_id == version.run_id
    assert len(tags["params_hash"]) == 16 and tags["git_commit"]
    assert tags["prefect_flow_run_id"] not in ("", "local")

    moves = audit(env).history(NAME)
    assert [(m.alias, m.from_version, m.to_version, m.kind) for m in moves] == [
        ("staging", None, "1", "promote"),
        ("production", None, "1", "promote"),
    ]
    assert moves[1].actor == f"flow-run:{tags['prefect_flow_run_id']}"
    assert moves[1].gate_report == f"mlflow-run:{first.mlflow_run_id}/gate/decision.md"


def test_first_run_tells_its_story_in_mlflow(first, env, client):
    """Its MLflow run: the split inputs, provenance, description, grouped metrics, the version's
    description, the logged model's link to the version and the artifacts."""
    version = client.get_model_version_by_alias(NAME, "production")
    md5 = hashlib.md5(env["data"].read_bytes()).hexdigest()
    run = client.get_run(first.mlflow_run_id)
    assert run.info.status == "FINISHED"
    # One input per split: its own name, digest of its rows and row count; the file's md5 a tag.
    inputs = {i.dataset.name: i for i in run.inputs.dataset_inputs}
    ref = f"{env['data'].stem}@{md5[:10]}"
    assert sorted(inputs) == [f"{ref}/test", f"{ref}/train", f"{ref}/validation"]
    assert len({i.dataset.digest for i in inputs.values()}) == 3
    for split, size in (("train", "train"), ("validation", "val"), ("test", "test")):
        found = inputs[f"{ref}/{split}"]
        assert json.loads(found.dataset.profile)["num_rows"] == first.dataset.splits[size]
        assert {t.key: t.value for t in found.tags}["modelyard.file_md5"] == md5
        assert Path(json.loads(found.dataset.source)["uri"]).is_file()
    # Provenance under MLflow's standard names, and a description with the outcome and links.
    assert run.data.tags["mlflow.user"] and run.data.tags["mlflow.source.git.commit"]
    assert run.data.tags["mlflow.source.name"] == "flows/retrain.py:retrain"
    note = run.data.tags["mlflow.note.content"]
    assert f"on **{ref}**" in note and "**Gate: PROMOTE**" in note
    assert f"`{NAME}@production` is version 1" in note and "validation/index.html" in note
    assert client.get_experiment(run.info.experiment_id).tags["mlflow.note.content"]
    assert run.data.params["model.backbone"] == "tiny"
    assert run.data.metrics["test/accuracy"] == pytest.approx(first.candidate["accuracy"])
    assert len(client.get_metric_history(run.info.run_id, "val/macro_f1")) == 5  # per epoch
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) > 3  # per step
    groups = {key.split("/")[0] for key in run.data.metrics}
    # runtime/: the exported runtimes' parity and speed (this retrain exports); calibration/:
    # the candidate's ECE and friends (its model card's)
    expected = {"train", "val", "test", "slice", "data", "compute", "runtime", "calibration"}
    assert groups == expected, groups
    # The version describes itself with its gate report; the logged model links the version.
    assert version.description.startswith("**Gate: PROMOTE**")
    assert client.get_registered_model(NAME).description
    (logged_model,) = client.search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
    )
    assert json.loads(logged_model.tags["mlflow.modelVersions"]) == [{"name": NAME, "version": "1"}]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert "evaluation/confusion_matrix.png" in artifacts
    assert {a.path for a in client.list_artifacts(run.info.run_id, "gate")} == {
        "gate/decision.json",
        "gate/decision.md",
    }
    docs = {a.path for a in client.list_artifacts(run.info.run_id, "validation")}
    assert {
        "validation/index.html",
        "validation/validation.json",
        "validation/0-rows.html",
        "validation/1-statistics.html",
    } <= docs
    assert run.data.metrics["data/duplicate_fraction"] == 0.0
    assert run.data.tags["modelyard.validation"] == "passed"


def test_validation_is_a_prefect_artifact_of_the_run(first, client):
    markdown = _prefect_artifact(client, first.mlflow_run_id, f"data-validation-{NAME}")
    assert "passed" in markdown and "20/20 expectations passed on 1500 rows" in markdown
    # (cut to fit Prefect's page: the Data Docs carry the whole title)
    assert "| pass | labels in the configured set ['negative', " in markdown


def test_prefect_flow_run_is_named_tagged_and_linked(first, env, client):
    from uuid import UUID

    from prefect.client.orchestration import get_client

    run = client.get_run(first.mlflow_run_id)
    ref = run.data.tags["modelyard.dataset_version"]
    assert ref == f"{env['data'].stem}@{first.dataset.md5[:10]}"
    with get_client(sync_client=True) as prefect:
        flow_run = prefect.read_flow_run(UUID(run.data.tags["modelyard.prefect_flow_run_id"]))
    assert flow_run.name == f"retrain {NAME} on {ref}"
    assert {f"model:{NAME}", f"dataset:{ref}", "trigger:manual"} <= set(flow_run.tags)
    experiment = run.info.experiment_id
    link = _prefect_artifact(client, first.mlflow_run_id, f"mlflow-run-{NAME}")
    assert f"/#/experiments/{experiment}/runs/{first.mlflow_run_id})" in link
    link = _prefect_artifact(client, first.mlflow_run_id, f"model-version-{NAME}")
    assert f"/#/models/{NAME}/versions/1)" in link


def test_candidate_beats_the_majority_baseline(first):
    assert first.candidate["accuracy"] > 0.6  # three balanced classes: majority is ~0.33


def test_production_model_loads_by_alias_in_a_fresh_process(first, env, tmp_path):
    out = predict_in_fresh_process(
        env["uri"], f"models:/{NAME}@production", ["The sound is superb."], tmp_path
    )
    assert out["labels"][0] in {"negative", "neutral", "positive"}


def test_same_inputs_again_train_nothing(first, fresh, monkeypatch):
    """`make run` twice with nothing changed (a clean commit): the second run finds version 1 by
    its lineage key before validating or training anything, says so, and ends Completed with
    nothing trained, registered or moved."""
    from typer.testing import CliRunner

    from modelyard.cli import app

    env, client = fresh
    pin_code_commit(monkeypatch)  # the commit version 1 was trained from (tests/e2e/conftest)
    experiment = client.get_experiment_by_name("modelyard").experiment_id
    runs_before = client.search_runs([experiment])
    result = CliRunner().invoke(app, ["retrain", "--params", env["params"]])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert f"{NAME}: identical to version 1 (registered 20" in out, out
    assert "gate decision promote). Nothing was trained, registered or moved" in out
    assert [str(v.version) for v in client.search_model_versions(f"name='{NAME}'")] == ["1"]
    assert str(client.get_model_version_by_alias(NAME, "production").version) == "1"
    assert str(client.get_model_version_by_alias(NAME, "staging").version) == "1"
    assert len(audit(env).history(NAME)) == 2
    runs = client.search_runs([experiment])
    assert [r.info.run_id for r in runs] == [r.info.run_id for r in runs_before]
    assert all(r.info.status == "FINISHED" for r in runs)  # no training run left RUNNING
    markdown, state = _repeat_artifact()
    assert state == "COMPLETED"
    assert "identical to version 1" in markdown and "--force" in markdown
    tags = client.get_model_version(NAME, "1").tags
    assert tags["lineage_key"] in markdown and tags["code_commit"] in markdown
    assert tags["env.device"] == "cpu" and tags["env.precision"] == "fp32"
    assert tags["judged_against"] == "none"


def _repeat_artifact() -> tuple[str, str]:
    """The latest `repeat-NAME` Prefect artifact and the state of the flow run that made it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as prefect:
        artifact, *_ = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"repeat-{NAME}"])),
            sort=ArtifactSort.CREATED_DESC,
        )
        flow_run = prefect.read_flow_run(artifact.flow_run_id)
    return str(artifact.data), flow_run.state.type.value


def test_same_inputs_again_leave_production_unchanged(first, fresh, monkeypatch):
    """`make run` twice with nothing changed, with --force: the same metrics, no improvement, no
    alias move."""
    from flows.retrain import retrain

    env, client = fresh
    pin_code_commit(monkeypatch)  # without `force` it would train nothing (above)
    second = retrain(params_path=env["params"], force=True)
    assert second.candidate == first.candidate  # seeded CPU training is deterministic
    assert second.production == first.candidate  # production scored on the same split
    assert not second.decision.passed
    assert any("improves by +0.0000" in reason for reason in second.decision.reasons)
    assert second.production_version_before == second.production_version_after == "1"

    assert str(client.get_model_version_by_alias(NAME, "production").version) == "1"
    assert str(client.get_model_version_by_alias(NAME, "staging").version) == "1"
    assert len(audit(env).history(NAME)) == 2  # a rejection moves nothing and writes nothing
    rejected = client.get_model_version(NAME, second.version)
    assert rejected.aliases == []
    assert rejected.tags["gate_decision"] == "reject" and rejected.tags["rejected"] == "true"
    # The same training as version 1's: the same key (the next run would repeat either).
    assert rejected.tags["lineage_key"] == client.get_model_version(NAME, "1").tags["lineage_key"]


def test_failing_gate_on_a_worse_model_moves_no_alias(first, fresh):
    from flows.retrain import retrain

    env, client = fresh
    versions_before = len(client.search_model_versions(f"name='{NAME}'"))
    worse = retrain(
        params_path=env["params"],
        overrides={"train.epochs": 1, "promotion.register_rejected": False},
    )
    assert not worse.decision.passed and worse.version is None
    assert worse.production_version_after == "1"
    assert str(client.get_model_version_by_alias(NAME, "production").version) == "1"
    assert len(client.search_model_versions(f"name='{NAME}'")) == versions_before


def test_summary_a_person_reads(first, capsys):
    from modelyard.report import print_summary

    print_summary(first)
    out = " ".join(capsys.readouterr().out.split())
    assert first.dataset.md5 in out
    assert "data 20/20 expectations passed on 1500 rows; Data Docs:" in out
    assert "PROMOTE" in out and "first model: all absolute thresholds met" in out
    assert f"{NAME} version 1" in out and "production → v1" in out
    assert "majority class: accuracy 0.3" in out
    assert "mlflow ui --backend-store-uri sqlite:///" in out


def _prefect_artifact(client, run_id: str, key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    flow_run_id = client.get_run(run_id).data.tags["modelyard.prefect_flow_run_id"]
    with get_client(sync_client=True) as prefect:
        artifacts = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            )
        )
    assert len(artifacts) == 1, f"no {key} artifact on the flow run"
    return artifacts[0].data


def test_explanation_report_in_mlflow_and_prefect(first, client, tmp_path):
    import json
    from pathlib import Path

    run_id = first.mlflow_run_id
    assert {a.path for a in client.list_artifacts(run_id, "explanations")} == {
        "explanations/report.html",
        "explanations/report.json",
    }
    local = client.download_artifacts(run_id, "explanations/report.json", str(tmp_path))
    report = json.loads(Path(local).read_text())
    assert [c["label"] for c in report["classes"]] == ["negative", "neutral", "positive"]
    assert all(c["tokens"] and c["explained"] > 0 for c in report["classes"])
    assert len(report["worst_misclassified"]) <= 5
    for mistake in report["worst_misclassified"]:
        assert mistake["true"] != mistake["predicted"] and mistake["tokens"]
    markdown = _prefect_artifact(client, run_id, f"explanations-{NAME}")
    assert "What drives each class" in markdown and "Most confident mistakes" in markdown


def test_compute_cost_of_every_run_is_logged_and_positive(first, client):
    run = client.get_run(first.mlflow_run_id)
    metrics = run.data.metrics
    for key in (
        "compute/seconds",
        "compute/device_hours",
        "compute/samples_per_second",
        "compute/energy_kwh",
        "compute/cost",
        "compute/devices",
        "compute/total/cost",
        "compute/total/device_hours",
        "compute/total/energy_kwh",
    ):
        assert metrics[key] > 0, key
    assert metrics["compute/total/attempts"] == 1
    # Each figure once (step 0), none drawn against an attempt number.
    history = client.get_metric_history(first.mlflow_run_id, "compute/device_hours")
    assert [m.step for m in history] == [0]
    assert not any(key.startswith("attempt_") for key in metrics)
    assert run.data.tags["modelyard.compute.device"] == "cpu"
    assert run.data.tags["modelyard.compute.energy_source"] in ("codecarbon", "estimate")
    compute = first.decision.compute
    assert compute["cost"] == pytest.approx(metrics["compute/cost"])
    assert compute["device_hours"] == pytest.approx(compute["devices"] * compute["seconds"] / 3600)
    markdown = _prefect_artifact(client, first.mlflow_run_id, f"gate-decision-{NAME}")
    assert "**Compute** (not gated):" in markdown and "device-h" in markdown


def test_models_show_sums_the_cost_over_attempts(first, env, monkeypatch):
    import json
    import os

    from tests.helpers import forked

    monkeypatch.setenv("MLFLOW_TRACKING_URI", env["uri"])
    monkeypatch.setenv("COLUMNS", "200")
    shown = forked.run(["models", "show", NAME, "1"], env=os.environ, timeout=120, cwd=env["home"])
    assert shown.returncode == 0, shown.stderr
    out = " ".join(shown.stdout.split())
    assert "compute 1 training attempt(s) on cpu" in out and "device-h" in out
    assert "attempt 1:" in out and "info compute:" in out

    explained = forked.run(
        [
            "explain",
            "The sound is superb.",
            "--version",
            "1",
            "--params",
            env["params"],
            "--json",
        ],
        env=os.environ,
        timeout=120,
        cwd=env["home"],
    )
    assert explained.returncode == 0, explained.stderr
    body = json.loads(explained.stdout)
    assert [t["token"] for t in body["tokens"]] == ["The", "sound", "is", "superb", "."]
    missing = forked.run(
        [
            "explain",
            "x",
            "--version",
            "99",
            "--params",
            env["params"],
        ],
        env=os.environ,
        timeout=120,
        cwd=env["home"],
    )
    assert missing.returncode == 1 and "has no version 99" in missing.stderr + missing.stdout


def test_dp_fine_tune_reports_a_finite_epsilon_and_the_gate_holds_it_to_the_budget(first, fresh):
    """DP-SGD on the tiny model: ε spent is logged and finite; a budget below it is a refusal,
    however good the model, and a budget above it passes that check."""
    import math

    from flows.retrain import retrain

    env, client = fresh
    private = {
        "train.privacy.enabled": True,
        "train.privacy.target_epsilon": 4.0,
        "train.epochs": 1,
        "promotion.register_rejected": False,
    }
    over = retrain(params_path=env["params"], overrides={**private, "gate.max_epsilon": 1.0})
    epsilon = over.training.dp_epsilon
    assert math.isfinite(epsilon) and 0 < epsilon <= 4.0 + 1e-6
    assert not over.decision.passed and over.version is None
    (check,) = [c for c in over.decision.checks if c.name == "privacy"]
    assert not check.passed and check.candidate == pytest.approx(epsilon)
    assert f"ε {epsilon:.3f} over the privacy budget 1" in check.reason
    run = client.get_run(over.mlflow_run_id).data
    assert run.metrics["train/dp_epsilon"] == pytest.approx(epsilon)
    assert run.metrics["train/dp_delta"] == 1e-5 and run.metrics["train/dp_noise_multiplier"] > 0
    assert run.metrics["compute/cost"] > 0
    assert str(client.get_model_version_by_alias(NAME, "production").version) == "1"

    within = retrain(params_path=env["params"], overrides={**private, "gate.max_epsilon": 5.0})
    (check,) = [c for c in within.decision.checks if c.name == "privacy"]
    assert check.passed and within.training.dp_epsilon == pytest.approx(epsilon)


def test_a_privacy_budget_refuses_a_model_trained_without_dp(first, fresh):
    from flows.retrain import retrain

    env, _ = fresh
    # One epoch: the check is about how it was trained, not how well.
    plain = retrain(
        params_path=env["params"],
        overrides={
            "gate.max_epsilon": 10.0,
            "promotion.register_rejected": False,
            "train.epochs": 1,
        },
    )
    (check,) = [c for c in plain.decision.checks if c.name == "privacy"]
    assert not check.passed and "trained without differential privacy" in check.reason


def test_a_grown_dataset_is_compared_on_texts_the_champion_never_saw(first, fresh, tmp_path):
    """The issue's case: feedback grows the dataset; a fresh cut of it would put the champion's
    training texts in the test split. The retrain inherits the champion's split instead: zero
    overlap, nothing to hold out, and the gate report says so."""
    import pandas as pd

    from flows.retrain import retrain
    from modelyard.config import load_params
    from modelyard.data.dataset import read_frame, split, to_canonical
    from modelyard.data.membership import TEST, TRAIN, VAL, text_hashes
    from modelyard.data.synthetic import ReviewSpec, write_reviews
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.registry.splits import load_membership

    env, _ = fresh
    data_params = load_params(env["params"]).data
    extra = read_frame(write_reviews(tmp_path / "more.csv", ReviewSpec(rows=400, seed=99)))
    grown = pd.concat([read_frame(env["data"]), extra], ignore_index=True)
    grown_path = tmp_path / "grown.csv"
    grown.to_csv(grown_path, index=False)

    registry = MlflowRegistry(env["uri"], "modelyard")
    champion = registry.alias_version(NAME, "production")
    seen = load_membership(registry, NAME, champion).keys(TRAIN, VAL)
    naive = split(to_canonical(grown, data_params), data_params)
    before = int(text_hashes(naive.test["text"]).isin(seen).sum())
    assert before > 0, "a fresh split of the grown data must overlap, or this test shows nothing"

    # One epoch: what is checked is the split it was compared on, not whether it won.
    summary = retrain(
        params_path=env["params"], data_path=str(grown_path), overrides={"train.epochs": 1}
    )
    notes = summary.decision.notes
    assert notes[0].startswith(f"split inherited from production version {champion}")
    assert f"0 held out because production version {champion}" in notes[1]
    assert summary.production_version_before == champion
    after = load_membership(registry, NAME, summary.version)
    assert not after.keys(TEST) & seen
    assert load_membership(registry, NAME, champion).keys(TEST) <= after.keys(TEST)
    print(
        f"grown dataset: {before} of {len(naive.test)} test texts of a fresh split were in "
        f"production v{champion}'s training/validation split; inherited split: 0"
    )
