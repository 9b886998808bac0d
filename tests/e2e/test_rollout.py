"""Rollouts end to end on the session's tiny model, against a real (temporary) Prefect API, MLflow
store and platform database: a retrain with `rollout.strategy: shadow` opens a rollout instead
of moving production; the rollout flow, on prediction and feedback rows as the server writes
them, promotes a better challenger, aborts a worse one, waits for labels on too few, and
finishes an ending a killed run began; `modelyard rollout` shows and overrides it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tests.helpers.models import TINY_MODEL
from tests.helpers.stores import TrainedHome, copy_home

pytestmark = pytest.mark.slow

NAME = TINY_MODEL
# Small enough for a test's traffic; agreement is no part of these cases (a better challenger
# disagrees with a worse champion wherever the champion is wrong).
POLICY = {
    "rollout.strategy": "shadow",
    "rollout.min_feedback": 20,
    "rollout.min_requests": 10,
    "rollout.min_agreement": 0.0,
}


@pytest.fixture(scope="module")
def template(tiny_production: TrainedHome, tmp_path_factory) -> Path:
    """The session's stores with version 1's model registered again as version 2 (the same
    weights: the verdict reads only the logged traffic), a shadow rollout of 2 against 1 open."""
    from modelyard.adapters.rollout_actions import Opening, Stores
    from modelyard.config import Settings

    home = copy_home(tiny_production.home, tmp_path_factory.mktemp("rollout") / "home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELYARD_HOME", str(home))
        stores = Stores.from_settings(Settings())
        _register_again(stores, "1")
        opening = Opening(stores, NAME, "2", "shadow", 0.1, "test:opened")
        with stores.audit.promotion_lock(NAME):
            opening("1", "passed the gate", _Quiet())
        assert opening.opened is not None and opening.refusal is None
        stores.audit.engine.dispose()
    return home


def _register_again(stores, version: str) -> None:
    """`version`'s logged model registered once more: a new version of the same weights."""
    found = stores.registry.client.get_model_version(NAME, version)
    tags = stores.registry.version_info(NAME, version).tags
    assert stores.registry.register(found.source, NAME, found.run_id, tags) == "2"


class _Quiet:
    def info(self, msg: str, *args: object) -> None:
        pass


@pytest.fixture
def env(template, tmp_path, real_params, small_reviews) -> Iterator[tuple[Path, Path]]:
    """(home, params file) of a copy of the template, MODELYARD_HOME pointing at it."""
    home = copy_home(template, tmp_path / "home")
    params = home / "params.yaml"
    chosen = real_params.updated({"model.name": NAME, "data.path": str(small_reviews), **POLICY})
    params.write_text(yaml.safe_dump(chosen.model_dump(mode="json")))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELYARD_HOME", str(home))
        yield home, params


def _stores():
    from modelyard.adapters.rollout_actions import Stores
    from modelyard.config import Settings

    return Stores.from_settings(Settings())


def shadow_traffic(texts: pd.DataFrame, champion_right: int, challenger_right: int) -> None:
    """One labelled request per row of `texts` as the server logs a shadow rollout: the
    champion's served answer (version 1), the challenger's shadow score of it (version 2), the
    feedback. The first `champion_right` (`challenger_right`) answers are right, the rest wrong."""
    from sqlalchemy import insert

    from modelyard.store.models import Feedback, Prediction

    labels = sorted(set(texts["label"]))
    now, served, shadow, feedback = datetime.now(UTC), [], [], []
    for index, (text, truth) in enumerate(zip(texts["text"], texts["label"], strict=True)):
        wrong = labels[(labels.index(truth) + 1) % len(labels)]
        request = str(uuid.uuid4())
        common = {
            "created_at": now,
            "model": NAME,
            "text": text,
            "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "probabilities": {},
            "latency_ms": 5.0,
            "request_id": request,
        }
        right = (index < champion_right, index < challenger_right)
        served.append({**common, "id": request, "version": "1", "role": "served",
                       "label": truth if right[0] else wrong})  # fmt: skip
        shadow.append({**common, "id": str(uuid.uuid4()), "version": "2", "role": "shadow",
                       "label": truth if right[1] else wrong})  # fmt: skip
        feedback.append({"prediction_id": request, "label": truth, "created_at": now})
    engine = _stores().audit.engine
    with engine.begin() as connection:
        connection.execute(insert(Prediction), served + shadow)
        connection.execute(insert(Feedback), feedback)
    engine.dispose()


def _texts(small_reviews: Path, rows: int) -> pd.DataFrame:
    return pd.read_csv(small_reviews).head(rows)[["text", "label"]].astype(str)


def _evaluate(params: Path):
    """The rollout flow's result, and the markdown of the artifact its run left."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from flows.rollout import rollout

    state = rollout(params_path=str(params), return_state=True)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    return state.result(), "\n".join(str(a.data) for a in artifacts)


def _moves(stores) -> list[tuple[str, str, str | None, str]]:
    return [(m.alias, m.kind, m.from_version, m.to_version) for m in stores.audit.history(NAME)]


def test_a_better_challenger_is_promoted_and_the_champion_stays_reachable(env, small_reviews):
    from modelyard.adapters.manual_moves import roll_back
    from modelyard.rollout import Outcome
    from modelyard.store.rollouts import RolloutState

    shadow_traffic(_texts(small_reviews, 40), champion_right=24, challenger_right=40)
    done, artifact = _evaluate(env[1])
    assert done.outcome is Outcome.PROMOTE and done.production == "2", done
    assert "# Rollout #1 of tiny-reviews: promote" in artifact
    stores = _stores()
    assert stores.registry.alias_version(NAME, "production") == "2"
    assert stores.registry.alias_version(NAME, "challenger") is None
    (ended,) = stores.rollouts.history(NAME)
    assert ended.state is RolloutState.PROMOTED and stores.rollouts.current(NAME) is None
    assert _moves(stores)[-2:] == [
        ("production", "promote", "1", "2"),
        ("challenger", "rollout", "2", ""),
    ]
    promoted = stores.audit.history(NAME, "production")[-1]
    assert promoted.reason.startswith("rollout #1 (shadow) promote: ")
    assert "alpha=0.05" in promoted.reason and promoted.reason == ended.reason
    # The previous champion is where `models rollback` goes.
    assert roll_back(stores.registry, stores.audit, NAME, None, "test", "r", False).version == "1"


def test_a_worse_challenger_is_aborted(env, small_reviews):
    from modelyard.rollout import Outcome
    from modelyard.store.rollouts import RolloutState

    shadow_traffic(_texts(small_reviews, 40), champion_right=40, challenger_right=8)
    done, artifact = _evaluate(env[1])
    assert done.outcome is Outcome.ABORT and done.production == "1", done
    assert "# Rollout #1 of tiny-reviews: abort" in artifact
    stores = _stores()
    assert stores.registry.alias_version(NAME, "production") == "1"
    assert stores.registry.alias_version(NAME, "challenger") is None
    assert stores.rollouts.history(NAME)[-1].state is RolloutState.ABORTED
    assert _moves(stores)[-1] == ("challenger", "rollout", "2", "")
    assert [m.to_version for m in stores.audit.history(NAME, "production")] == ["1"]


def test_too_few_labels_continue_and_say_how_many_more(env, small_reviews):
    from modelyard.adapters.rollout_actions import Decided
    from modelyard.rollout import Outcome

    shadow_traffic(_texts(small_reviews, 5), champion_right=5, challenger_right=5)
    done, artifact = _evaluate(env[1])
    assert done.outcome is Outcome.CONTINUE and done.labels_needed, done
    assert done.labels_needed >= 15 and "continue" in artifact
    stores = _stores()
    found = stores.rollouts.current(NAME)
    assert found is not None and stores.registry.alias_version(NAME, "challenger") == "2"
    recorded = Decided.from_dict(found.evidence)
    assert recorded is not None and recorded.outcome is Outcome.CONTINUE
    assert recorded.labels_needed == done.labels_needed
    note = stores.audit.history(NAME, "challenger")[-1]
    assert (note.kind, note.from_version, note.to_version) == ("rollout", "2", "2")
    assert f"labels_needed={done.labels_needed}]" in note.reason
    rows = len(stores.audit.history(NAME))
    _evaluate(env[1])  # nothing new: the same verdict is not noted twice
    assert len(stores.audit.history(NAME)) == rows


KILLS = [
    # (champion right, challenger right of 40; what fails; the ending)
    (24, 40, "modelyard.store.audit.AuditLog.remove", "promote"),
    (40, 8, "modelyard.store.rollouts.RolloutStore.close", "abort"),
]


@pytest.mark.parametrize("champion, challenger, dies_in, ending", KILLS)
def test_a_run_killed_mid_ending_is_finished_by_the_next(
    env, small_reviews, champion, challenger, dies_in, ending
):
    import flows.rollout
    from modelyard.rollout import Outcome

    shadow_traffic(_texts(small_reviews, 40), champion, challenger)

    def die(*args: object, **kwargs: object) -> None:
        raise RuntimeError("killed")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(flows.rollout, "act", flows.rollout.act.with_options(retries=0))
        patch.setattr(dies_in, die)
        with pytest.raises(RuntimeError, match="killed"):
            flows.rollout.rollout(params_path=str(env[1]))
    stores = _stores()
    assert stores.rollouts.current(NAME) is not None  # cut short: still open
    done, _ = _evaluate(env[1])
    assert done.resumed and done.outcome is Outcome(ending), done
    assert stores.rollouts.current(NAME) is None
    closed = stores.rollouts.history(NAME)[-1]
    assert closed.reason is not None and closed.reason.startswith(f"rollout #1 (shadow) {ending}: ")
    assert "alpha=0.05" in closed.reason  # the verdict the killed run recorded
    assert stores.registry.alias_version(NAME, "challenger") is None
    production = [m.to_version for m in stores.audit.history(NAME, "production")]
    assert production == (["1", "2"] if ending == "promote" else ["1"])  # the first retrain's
    assert [m.to_version for m in stores.audit.history(NAME, "challenger")].count("") == 1


def _cli(*args: str) -> tuple[int, str]:
    from modelyard.cli import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    return result.exit_code, " ".join(result.output.split())


def test_status_evaluate_and_a_persons_promote(env, small_reviews):
    code, out = _cli("rollout", "status", NAME)
    assert code == 0, out
    assert "rollout #1 of tiny-reviews: shadow, version 2 (challenger) against version 1" in out
    assert f"no verdict yet (modelyard rollout evaluate {NAME})" in out
    shadow_traffic(_texts(small_reviews, 5), champion_right=5, challenger_right=5)
    code, out = _cli("rollout", "evaluate", NAME, "--params", str(env[1]))
    assert code == 0 and f"{NAME}: continue: continue: " in out, out
    code, out = _cli("rollout", "status", NAME)
    assert "last verdict" in out and "labels_needed=" in out and "alpha" in out, out
    code, out = _cli("rollout", "promote", NAME)
    assert code == 2 and "--reason" in out, out  # a reason is required
    code, out = _cli("rollout", "promote", NAME, "--reason", "the demo looks right", "--as", "ana")
    assert code == 0, out
    assert f"rollout #1 of {NAME} promoted: {NAME}@production is version 2" in out
    last = _stores().audit.history(NAME, "production")[-1]
    assert (last.actor, last.to_version) == ("user:ana", "2")
    assert last.reason == "rollout #1 (shadow) promote: by hand: the demo looks right"
    code, out = _cli("rollout", "status", NAME)
    assert f"{NAME} has no open rollout" in out and "promoted" in out, out
    code, out = _cli("models", "history", NAME)
    assert "│ challenger │ rollout │ 2 │ — │ user:ana │ rollout #1 promoted: the" in out, out


def test_a_persons_abort_and_clear_refusals(env):
    code, out = _cli("rollout", "abort", NAME, "--reason", "wrong week")
    assert code == 0 and f"rollout #1 of {NAME} aborted: {NAME}@production is version 1" in out
    assert _stores().registry.alias_version(NAME, "challenger") is None
    code, out = _cli("rollout", "abort", NAME, "--reason", "again")
    assert code == 1 and f"error: {NAME} has no open rollout" in out, out
    code, out = _cli("rollout", "evaluate", NAME, "--params", str(env[1]))
    assert code == 1 and "has no open rollout" in out, out
    code, out = _cli("rollout", "status", "no-such-model")
    assert code == 1 and "there is no model named 'no-such-model' in the registry" in out, out
    done, _ = _evaluate(env[1])  # the scheduled run with nothing open does nothing
    assert done.rollout_id is None and "has no open rollout" in done.summary


def test_a_shadow_candidate_becomes_the_challenger_and_production_stays(tiny_production, tmp_path):
    """The retrain's promotion step (`flows.promote.promote_candidate`, as `flows/retrain.py`
    calls it after the gate) with `rollout.strategy: shadow`, on a second version of the
    session's model: `staging` and `challenger` move, audited, a rollout opens against
    production, which does not move (a full retrain here would cost ~30 s of training)."""
    from prefect import flow

    from flows.promote import promote_candidate
    from modelyard.adapters.promotion import Case, score_version
    from modelyard.config import Settings, load_params
    from modelyard.evaluation.gate import decide

    home = copy_home(tiny_production.home, tmp_path / "home")
    params = load_params(tiny_production.params).updated({"rollout.strategy": "shadow"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELYARD_HOME", str(home))
        stores = _stores()
        _register_again(stores, "1")
        test = pd.read_csv(tiny_production.summary.dataset.path).head(30)[["text", "label"]]
        labels = list(params.data.labels)
        metrics = score_version(stores.registry, NAME, "2", test, labels)
        run_id = stores.registry.version_info(NAME, "2").run_id
        case = Case(NAME, "2", str(run_id), metrics, test, labels, params.gate)
        decision = decide(metrics.headline(), metrics.headline(), params.gate.model_copy(
            update={"min_improvement": 0.0, "min_accuracy": 0.0, "min_macro_f1": 0.0}))  # fmt: skip

        @flow
        def promotion_step():
            return promote_candidate(
                stores.registry, stores.audit, case, decision, "1", params, Settings(), "f"
            )

        promoted = promotion_step()
    assert decision.passed and promoted.rollout is not None and promoted.deploy_failure is None
    assert stores.registry.alias_version(NAME, "production") == "1"
    assert stores.registry.alias_version(NAME, "challenger") == "2"
    found = stores.rollouts.current(NAME)
    assert found is not None and found.id == promoted.rollout.id
    assert (found.champion, found.challenger, found.strategy) == ("1", "2", "shadow")
    assert promoted.rollout_line == "shadow #1: challenger v2 against production v1"
    assert _moves(stores)[-2:] == [
        ("staging", "promote", "1", "2"),
        ("challenger", "promote", None, "2"),
    ]
    assert "shadow rollout against production version 1" in stores.audit.history(NAME)[-1].reason
