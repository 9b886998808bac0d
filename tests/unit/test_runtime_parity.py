"""The parity policy of exported runtimes, on constructed predictions: who may answer in the
PyTorch model's place, and which of those is chosen."""

from __future__ import annotations

from dataclasses import replace

import pytest

from modelyard.config import RuntimeParams
from modelyard.evaluation.gate import GateDecision
from modelyard.evaluation.parity import Measured, RuntimeReport, choose, judge, speedup
from modelyard.inference.runtime import EAGER, ONNX, ONNX_INT8

LABELS = ["neg", "pos"]
TRUTH = ["pos"] * 500 + ["neg"] * 500
# The reference is right on 900 of 1,000 texts.
REFERENCE = Measured(EAGER, ["pos"] * 450 + ["neg"] * 50 + ["neg"] * 450 + ["pos"] * 50, {32: 100})


def variant(name: str, flipped: list[int], speed: float) -> Measured:
    predictions = list(REFERENCE.predictions)
    for i in flipped:
        predictions[i] = "neg" if predictions[i] == "pos" else "pos"
    return Measured(name, predictions, {1: speed / 3, 32: speed}, 10.0)


def test_a_variant_within_the_policy_passes():
    # 4 of 1,000 texts flipped, two right now and two wrong: agreement 0.996, no metric drop.
    same = judge(REFERENCE, variant(ONNX, [0, 1, 450, 451], 200), TRUTH, LABELS, RuntimeParams())
    assert same.passed and same.reasons == []
    assert same.agreement == 0.996 and same.accuracy_delta == 0.0
    assert same.figures()["texts_per_s_batch32"] == 200 and same.figures()["passed"] == 1.0


def test_too_little_agreement_fails_even_without_a_metric_drop():
    # 3 right→wrong and 3 wrong→right: accuracy unchanged, but 6 texts of 1,000 disagree.
    flipped = [0, 1, 2, 450, 451, 452]
    found = judge(REFERENCE, variant(ONNX_INT8, flipped, 400), TRUTH, LABELS, RuntimeParams())
    assert not found.passed and found.accuracy_delta == 0.0
    assert found.reasons == ["agreement 0.9940 with eager < runtime.min_agreement 0.995"]
    assert "FAIL" in found.line() and "agreement 0.9940" in found.line()


def test_a_metric_drop_beyond_the_policy_fails_with_its_reason():
    # 4 right→wrong: agreement 0.996 passes, accuracy drops 0.004 (< 0.005), but with a
    # stricter drop limit it fails on accuracy and macro-F1 both.
    policy = RuntimeParams(max_metric_drop=0.003)
    found = judge(REFERENCE, variant(ONNX_INT8, [0, 1, 2, 3], 400), TRUTH, LABELS, policy)
    assert not found.passed
    assert found.accuracy_delta == pytest.approx(-0.004)
    assert [reason.split(" drops")[0] for reason in found.reasons] == ["accuracy", "macro-F1"]
    default = judge(
        REFERENCE, variant(ONNX_INT8, [0, 1, 2, 3], 400), TRUTH, LABELS, RuntimeParams()
    )
    assert default.passed


def test_a_variant_that_could_not_run_fails_with_its_error():
    broken = Measured(ONNX, [], error="export failed: TorchExportError: no")
    found = judge(REFERENCE, broken, TRUTH, LABELS, RuntimeParams())
    assert not found.passed and found.reasons == ["export failed: TorchExportError: no"]


def test_the_fastest_passing_variant_is_chosen_and_the_reference_wins_ties():
    policy = RuntimeParams()
    eager = judge(REFERENCE, REFERENCE, TRUTH, LABELS, policy)
    onnx = judge(REFERENCE, variant(ONNX, [], 170), TRUTH, LABELS, policy)
    int8_bad = judge(REFERENCE, variant(ONNX_INT8, list(range(20)), 350), TRUTH, LABELS, policy)
    int8_good = judge(REFERENCE, variant(ONNX_INT8, [], 350), TRUTH, LABELS, policy)
    assert choose([eager, onnx, int8_bad]) == ONNX  # the fastest one failed: kept out
    assert choose([eager, onnx, int8_good]) == ONNX_INT8
    assert choose([eager, judge(REFERENCE, variant(ONNX, [], 100), TRUTH, LABELS, policy)]) == EAGER
    assert choose([]) == EAGER


def test_the_report_joins_the_gate_report():
    policy = RuntimeParams()
    bad = judge(REFERENCE, variant(ONNX_INT8, list(range(20)), 350), TRUTH, LABELS, policy)
    report = RuntimeReport(
        [judge(REFERENCE, REFERENCE, TRUTH, LABELS, policy), bad], {"cpu": EAGER}
    )
    decision = GateDecision(True, runtime=report.lines())
    assert "info runtime: chosen cpu: eager" in decision.to_text()
    assert "cpu/onnx-int8: FAIL" in decision.to_markdown()
    assert "runtime.min_agreement" in decision.to_markdown()
    assert report.failed() == [bad] and decision.to_dict()["runtime"] == report.lines()


def test_the_choice_weighs_every_batch_size_a_server_runs():
    # MiniLM on this machine: ONNX 2.3x the reference at batch 1 and 0.91x at 32 serves better
    # (a lone caller waits less, a loaded server loses a little); 1.1x at 1 and 0.8x at 32 not.
    policy = RuntimeParams()
    eager = judge(REFERENCE, REFERENCE, TRUTH, LABELS, policy)
    eager = replace(eager, texts_per_s={1: 73.0, 32: 253.0})
    onnx = judge(REFERENCE, variant(ONNX, [], 1), TRUTH, LABELS, policy)
    assert choose([eager, replace(onnx, texts_per_s={1: 169.0, 32: 231.0})]) == ONNX
    assert choose([eager, replace(onnx, texts_per_s={1: 80.0, 32: 202.0})]) == EAGER
    assert speedup({1: 146.0, 32: 253.0}, {1: 73.0, 32: 253.0}) == pytest.approx(2**0.5)
    assert speedup({64: 1.0}, {1: 73.0}) == 0.0
