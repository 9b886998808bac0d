"""Compare-and-promote without Prefect: the adapter on a real MLflow registry and audit trail
(temporary SQLite stores), the decision made again when production moved meanwhile."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from modelyard.adapters.promotion import Case, compare_and_promote, find_champion, register
from modelyard.config import GateParams
from modelyard.data.dataset import Splits
from modelyard.evaluation.gate import decide
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.store.audit import AuditLog
from modelyard.tags import GATE_DECISION, PRODUCTION, REJECTED, STAGING, TRUE
from tests.helpers.models import TINY_LABELS, TINY_TEXTS, register_tiny_versions

NAME = "promo"
EMPTY = Splits(*(pd.DataFrame({"text": [], "label": []}) for _ in range(3)))
# Any bar the tiny, untrained models can pass on the first comparison.
LENIENT = GateParams(
    min_accuracy=0.0,
    min_macro_f1=0.0,
    max_regression=1.0,
    min_improvement=0.0,
    max_slice_regression=1.0,
)


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: object) -> None:
        self.lines.append(msg % args)


@pytest.fixture
def stores(tmp_path: Path) -> tuple[MlflowRegistry, AuditLog]:
    registry = MlflowRegistry(
        f"sqlite:///{tmp_path}/mlflow.db", "promo", (tmp_path / "mlruns").as_uri()
    )
    register_tiny_versions(registry, NAME, tmp_path, seeds=(1, 2, 3))  # production -> 1
    return registry, AuditLog.from_url(f"sqlite:///{tmp_path}/modelyard.db")


def _case(registry: MlflowRegistry, version: str, policy: GateParams) -> Case:
    from modelyard.adapters.promotion import score_version

    test = pd.DataFrame({"text": TINY_TEXTS * 3, "label": TINY_LABELS * 3})
    candidate = score_version(registry, NAME, version, test, TINY_LABELS)
    run_id = registry.version_info(NAME, version).run_id
    assert run_id is not None
    return Case(NAME, version, run_id, candidate, test, TINY_LABELS, policy)


def test_promotes_when_production_is_where_the_decision_left_it(stores):
    registry, audit = stores
    case = _case(registry, "3", LENIENT)
    decision = decide(case.candidate.headline(), case.candidate.headline(), LENIENT)
    log = Lines()
    done = compare_and_promote(
        registry, audit, case, decision, "1", [STAGING, PRODUCTION], "test", "passed", log
    )
    assert done.moved == [STAGING, PRODUCTION] and not done.rechecked
    assert done.recheck_report is None
    assert registry.alias_version(NAME, PRODUCTION) == "3"
    assert [m.to_version for m in audit.history(NAME, PRODUCTION)] == ["3"]
    assert any("version 1 -> 3 (audited)" in line for line in log.lines)


def test_a_production_that_moved_meanwhile_is_compared_again_inside_the_lock(stores):
    registry, audit = stores
    # The candidate passed against version 1; then another retrain put 2 in production.
    case = _case(registry, "3", GateParams(min_accuracy=0.0, min_macro_f1=0.0, min_improvement=1.0))
    passed = decide(case.candidate.headline(), case.candidate.headline(), LENIENT)
    registry.set_alias(NAME, PRODUCTION, "2")
    log = Lines()
    done = compare_and_promote(
        registry, audit, case, passed, "1", [STAGING, PRODUCTION], "test", "passed", log
    )
    # Against 2, an improvement of 1.0 cannot be met: nothing moves, the version says why.
    assert done.rechecked and done.compared_with == "2" and done.moved == []
    assert not done.decision.passed
    assert done.recheck_report is not None and "Production moved to version 2" in (
        done.recheck_report
    )
    assert registry.alias_version(NAME, PRODUCTION) == "2"
    assert registry.alias_version(NAME, STAGING) is None
    tags = registry.version_info(NAME, "3").tags
    assert tags[REJECTED] == TRUE and tags[GATE_DECISION] == "reject"
    assert audit.history(NAME) == []
    assert any("comparing again" in line for line in log.lines)


def test_registering_again_from_the_same_run_reuses_its_version(stores, tmp_path):
    registry, _ = stores
    case = _case(registry, "2", LENIENT)
    decision = decide(case.candidate.headline(), None, LENIENT)
    # Found by its run before anything is logged: no model directory or splits are read.
    again = register(registry, NAME, case.run_id, tmp_path / "unused", EMPTY, {}, decision)
    assert again.version == "2" and again.reused
    assert registry.version_info(NAME, "2").tags[GATE_DECISION] == "promote"


def test_the_champion_of_a_run_that_promoted_its_own_model_is_the_one_it_replaced(stores):
    registry, audit = stores
    own = registry.version_info(NAME, "2").run_id
    assert own is not None
    audit.move(registry, NAME, PRODUCTION, "2", kind="promote", actor="test", reason="r")
    champion = find_champion(registry, audit, NAME, own)
    assert champion.version == "1" and champion.own_model == "2"
    assert find_champion(registry, audit, NAME, "another-run").version == "2"
