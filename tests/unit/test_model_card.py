"""Model cards on constructed facts (issue 22.1): calibration arithmetic, the reliability diagram,
every section in both renderings, "not recorded" for every missing fact, the limitations the
data implies, and text from the stores escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from modelyard import card as mc
from modelyard.config import CardParams, Params
from modelyard.evaluation.calibration import (
    Calibration,
    calibrate,
    calibration,
    reliability_svg,
)
from modelyard.evaluation.gate import GateCheck, GateDecision

LABELS = ("negative", "positive")
WHEN = datetime(2026, 11, 29, 14, 3, tzinfo=UTC)
SECTIONS = (
    "Summary",
    "Intended use",
    "Data",
    "Training",
    "Evaluation",
    "Explanations",
    "Runtimes",
    "Limitations",
    "History",
)


def test_ece_and_mce_are_the_bins_gaps_weighted_by_their_texts():
    # 4 texts at 0.6, all right (gap 0.4); 6 at 1.0, half right (gap 0.5).
    rows = [[0.6, 0.4]] * 4 + [[0.0, 1.0]] * 6
    truth = ["negative"] * 4 + ["positive", "negative"] * 3
    result = calibration(rows, LABELS, truth)
    assert result.ece == pytest.approx(0.4 * 0.4 + 0.6 * 0.5)
    assert result.mce == pytest.approx(0.5)
    assert result.accuracy == pytest.approx(0.7)
    assert result.confidence == pytest.approx((4 * 0.6 + 6 * 1.0) / 10)
    assert result.overconfident
    filled = [b for b in result.bins if b.count]
    assert [(b.lower, b.upper, b.count) for b in filled] == [
        (pytest.approx(0.5), pytest.approx(0.6), 4),
        (pytest.approx(0.9), pytest.approx(1.0), 6),
    ]
    assert Calibration.from_dict(result.to_dict()) == result


def test_a_calibrated_model_has_no_gap_and_a_label_it_lacks_is_a_mistake():
    rows = [[0.9, 0.1]] * 10
    assert calibration(rows, LABELS, ["negative"] * 9 + ["positive"]).ece == pytest.approx(0.0)
    assert calibration([[0.8, 0.2]], LABELS, ["neutral"]).accuracy == 0.0


@pytest.mark.parametrize(
    ("rows", "truth", "message"),
    [
        ([], [], "no texts"),
        ([[0.5, 0.5]], ["negative", "positive"], "1 rows of probabilities for 2 labels"),
        ([[1.0]], ["negative"], "a row of 1 probabilities for 2 classes"),
    ],
)
def test_calibration_refuses_what_it_cannot_judge(rows, truth, message):
    with pytest.raises(ValueError, match=message):
        calibration(rows, LABELS, truth)


def test_calibrate_runs_the_classifier_and_the_diagram_is_standalone_svg():
    class Fixed:
        labels = LABELS

        def predict_proba(self, texts):
            return [[0.7, 0.3] if "bad" in text else [0.2, 0.8] for text in texts]

    result = calibrate(Fixed(), ["bad", "good", "bad"], ["negative", "positive", "positive"])
    assert result.texts == 3 and result.accuracy == pytest.approx(2 / 3)
    svg = reliability_svg(result)
    root = ET.fromstring(svg)  # well-formed XML, whatever the numbers
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("fill") != "#fafafa"]
    assert len(bars) == sum(1 for b in result.bins if b.count)
    assert "script" not in svg and "href" not in svg


def _calibration() -> Calibration:
    return calibration([[0.95, 0.05]] * 10, LABELS, ["negative"] * 6 + ["positive"] * 4)


def _full_facts() -> mc.CardFacts:
    slice_check = GateCheck(
        "slice", "slice_length_long_accuracy", 0.7, 0.8, 0.05, False, "long | texts regressed"
    )
    gate = GateDecision(
        False,
        [GateCheck("minimum", "accuracy", 0.8, None, 0.6, True, "ok"), slice_check],
        notes=["held out 3 texts"],
        figures={"candidate": {"accuracy": 0.8}, "production": {"accuracy": 0.82}},
    )
    return mc.CardFacts(
        model="reviews",
        version="3",
        generated_at=WHEN,
        source="constructed facts",
        aliases=("staging",),
        registered_at=WHEN,
        run_id="abc",
        run_link="http://mlflow/#/experiments/1/runs/abc",
        card=CardParams(owner="team <ml>", intended_use="route reviews", out_of_scope=("hiring",)),
        labels=LABELS,
        data=mc.DataFacts(
            version="reviews@71743ad3f7",
            md5="71743ad3f7a9f5a1fb1de71fbae4a59c",
            splits={"train": 1000, "val": 200, "test": 200},
            class_mix={"train": {"negative": 960, "positive": 40}, "test": {"negative": 190}},
            validation="passed",
        ),
        training=mc.TrainingFacts(backbone="minilm", steps=158, dp_epsilon=7.5, dp_delta=1e-5),
        evaluation=mc.EvaluationFacts(
            test_rows=200,
            metrics={"accuracy": 0.8},
            per_class={
                "negative": {"recall": 0.9, "support": 190.0},
                "positive": {"recall": 0.2, "support": 10.0},
            },
            slices={"length_long": 0.7},
            production_version="2",
            production={"accuracy": 0.82, "slice_length_long_accuracy": 0.8},
            calibration=_calibration(),
            gate=gate,
        ),
        explanations=mc.ExplanationFacts("IG", (mc.ClassWords("negative", 5, (("awful", 1.5),)),)),
        runtime=mc.RuntimeFacts(
            {"cpu": "onnx"},
            (mc.RuntimeVariant("onnx", "cpu", True, 1.0, 0.0, 0.0, {32: 900.0}, 0.8),),
        ),
        history=(mc.AliasMove(WHEN, "staging", "promote", None, "3", "flow-run:x", "passed | ok"),),
    )


def test_every_section_renders_from_full_facts_in_both_forms():
    rendered = mc.render(_full_facts())
    for title in SECTIONS:
        assert f"## {title}" in rendered.markdown
        assert f"<h2>{title}</h2>" in rendered.html
    md = rendered.markdown
    assert "| `positive` | 40 (4%) | 0 (0%) |" in md  # class mix, absent classes as 0
    assert "DP-SGD, ε = 7.500 at δ = 1e-05" in md
    assert "| slice | `slice_length_long_accuracy` | 0.7000 | 0.8000 | 0.0500 | **FAIL** |" in md
    assert "against production version 2" in md
    assert f"ECE {_calibration().ece:.4f}" in md
    assert (
        "| 2026-11-29 14:03:00 UTC | @staging | promote | — → 3 | flow-run:x | passed \\| ok |"
        in md
    )
    assert "<svg" in rendered.html and "<svg" not in md  # the diagram: HTML only
    assert "<script" not in rendered.html and "<a " not in rendered.html  # loads, links nothing
    assert "(http://mlflow/#/experiments/1/runs/abc)" in rendered.html  # the address, as text
    assert "team &lt;ml&gt;" in rendered.html  # recorded text escaped


def test_missing_facts_read_not_recorded_and_nothing_crashes():
    bare = mc.CardFacts("reviews", "1", WHEN, "the registry")
    md = mc.render(bare).markdown
    for missing in (
        "Owner, intended use and out-of-scope uses: not recorded",
        "Class mix: not recorded",
        "Test metrics: not recorded",
        "**Calibration**: not recorded",
        "**Gate report**: not recorded",
        "Explanation report: not recorded",
        "Exported runtimes: not recorded",
        "Audit trail: not recorded",
        "**Differential privacy**: not recorded",
    ):
        assert missing in md, missing
    assert "None that the recorded data implies" in md


def test_limitations_name_rare_classes_thin_test_support_flagged_slices_and_miscalibration():
    found = "\n".join(mc.limitations(_full_facts()))
    assert "`positive` has few training examples (40 rows, 4% of the largest class)" in found
    assert "`positive` has 10 test texts" in found
    assert "Weakest class by recall: `positive` (0.2000)" in found
    assert "The gate flagged slice `slice_length_long_accuracy`" in found
    assert "Slice `length_short` had fewer than 30 test texts" in found
    assert "overconfident (ECE" in found


def test_the_card_section_is_not_part_of_the_params_hash(real_params):
    changed = real_params.updated({"card.owner": "someone else", "card.out_of_scope": ["x"]})
    assert changed.digest() == real_params.digest()
    assert real_params.card.owner and real_params.card.out_of_scope  # params.yaml fills it in
    assert Params().card == CardParams()


def test_a_recorded_artifact_of_another_shape_reads_not_recorded(caplog):
    from modelyard import tags
    from modelyard.adapters.cards import _explanations, _parsed

    artifacts = {tags.EXPLANATIONS_FILE: {"classes": [{"not a label": 1}]}}
    assert _parsed(_explanations, artifacts, tags.EXPLANATIONS_FILE) is None
    assert "explanations/report.json is not as expected" in caplog.text
    assert _parsed(_explanations, {}, tags.EXPLANATIONS_FILE) is None  # none recorded
