"""Micro-batching with a real tiny classifier: concurrent requests share forward passes, the
batch size bound holds, each caller gets its own rows back, and one version answers a batch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np
import pytest

from modelyard.config import ModelParams, TinyBackbone
from modelyard.inference import TextClassifier
from modelyard.serving.batcher import MicroBatcher, NoModel
from modelyard.serving.model import LoadedModel
from modelyard.training.model import build_model

LABELS = ["negative", "neutral", "positive"]
TEXTS = [f"text number {i} is {'good' if i % 2 else 'bad'}" for i in range(10)]


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    params = ModelParams(backbone="tiny", max_length=32, tiny=TinyBackbone(vocab_size=120))
    model, tokenizer = build_model(params, LABELS, TEXTS * 5)
    return LoadedModel(
        "m", "7", "production", TextClassifier(model, tokenizer, "cpu"), None, datetime.now(UTC)
    )


def _run(batcher: MicroBatcher, requests: list[list[str]]):
    async def main():
        worker = asyncio.create_task(batcher.run())
        try:
            return await asyncio.gather(*(batcher.score(texts) for texts in requests))
        finally:
            worker.cancel()

    return asyncio.run(main())


def test_concurrent_requests_share_forward_passes(loaded):
    batches: list[int] = []
    batcher = MicroBatcher(
        lambda: loaded, max_batch_size=4, max_wait_ms=200, on_batch=batches.append
    )
    results = _run(batcher, [[text] for text in TEXTS])
    assert batches == [4, 4, 2]  # ten one-text requests, three forward passes
    expected = loaded.classifier.predict_proba(TEXTS)
    for text_rows, want in zip(results, expected, strict=True):
        assert text_rows.model.version == "7"
        np.testing.assert_allclose(text_rows.probabilities[0], want, atol=1e-5)


def test_a_large_request_is_one_batch_and_keeps_its_order(loaded):
    batches: list[int] = []
    batcher = MicroBatcher(lambda: loaded, max_batch_size=4, max_wait_ms=1, on_batch=batches.append)
    (result,) = _run(batcher, [TEXTS])
    assert batches == [10]
    np.testing.assert_allclose(
        result.probabilities, loaded.classifier.predict_proba(TEXTS), atol=1e-5
    )


def test_no_model_fails_the_waiting_requests():
    batcher = MicroBatcher(lambda: None, max_batch_size=4, max_wait_ms=1)
    with pytest.raises(NoModel):
        _run(batcher, [["x"]])
