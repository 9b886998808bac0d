"""`train.class_weights: balanced` on a constructed imbalanced set (one text in ten rare), the tiny
model, seeded: unweighted, it settles on the common class; weighted, it finds rare texts."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from modelyard.data import dataset as ds
from modelyard.evaluation.metrics import score
from modelyard.inference import TextClassifier
from modelyard.training.fit import fit
from tests.helpers.imbalanced import COMMON, RARE, imbalanced_frame


@pytest.fixture(scope="module")
def setup(tiny_params):
    params = tiny_params.updated(
        {"data.labels": [COMMON, RARE], "train.epochs": 4, "train.checkpoint_every": None}
    )
    return params, ds.split(imbalanced_frame(rows=800, rare_share=0.1, seed=0), params.data)


def rare_figures(params, splits):
    trained = fit(splits, params, Path(tempfile.mkdtemp()) / "model", progress=False)
    test = splits.test
    metrics = score(
        TextClassifier.load(trained.model_dir),
        test[ds.TEXT].tolist(),
        test[ds.LABEL].tolist(),
        [COMMON, RARE],
        RARE,
    )
    return metrics, trained.result.history


def test_balanced_class_weights_raise_the_rare_class_recall(setup):
    params, splits = setup
    plain, plain_history = rare_figures(params, splits)
    weighted, history = rare_figures(params.updated({"train.class_weights": "balanced"}), splits)
    assert weighted.per_class[RARE]["recall"] > plain.per_class[RARE]["recall"]
    assert weighted.macro_f1 > plain.macro_f1
    # Each epoch's record carries every class's validation figures (logged to MLflow per epoch).
    assert {"val_precision_rare", "val_recall_rare", "val_f1_common"} <= set(history[-1])
    assert len(history) == len(plain_history) == 4
