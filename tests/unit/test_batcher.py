"""Micro-batching with a real tiny classifier: concurrent requests share forward passes, the
batch size bound holds, each caller gets its own rows back, and one version answers a batch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np
import pytest

from modelyard.config import ModelParams, TinyBackbone
from modelyard.inference import TextClassifier
from modelyard.serving.batcher import CPU_CHUNK, MicroBatcher, NoModel, chunk_for
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


# A wait no test may sit out: a batch that waited for it would hang the test (and fail it, by
# the asyncio.wait_for below) instead of passing slowly.
FOREVER_MS = 3_600_000


def test_a_lone_request_never_waits(loaded):
    batcher = MicroBatcher(lambda: loaded, max_batch_size=32, max_wait_ms=FOREVER_MS)

    async def main():
        worker = asyncio.create_task(batcher.run())
        try:
            first = await asyncio.wait_for(batcher.score([TEXTS[0]]), 300)
            # Announced, then queued: nobody else on the way, so it goes at once too.
            arrived = batcher.expect()
            second = await asyncio.wait_for(batcher.score([TEXTS[1]], arrived), 300)
            # Announced and refused before the batcher (a 413): no longer waited for.
            batcher.expect()()
            third = await asyncio.wait_for(batcher.score([TEXTS[2]]), 300)
            return first, second, third
        finally:
            worker.cancel()

    assert all(scored.probabilities.shape == (1, 3) for scored in asyncio.run(main()))


def test_requests_on_their_way_join_the_batch(loaded):
    batches: list[int] = []
    batcher = MicroBatcher(
        lambda: loaded, max_batch_size=32, max_wait_ms=FOREVER_MS, on_batch=batches.append
    )

    async def main():
        worker = asyncio.create_task(batcher.run())
        try:
            coming = [batcher.expect() for _ in range(3)]
            first = asyncio.create_task(batcher.score([TEXTS[0]], coming[0]))
            await asyncio.sleep(0)  # (a turn of the loop, no time) the first is queued...
            while batcher.waiting:  # ...and taken: the batcher opened a batch with it
                await asyncio.sleep(0)
            rest = [batcher.score([TEXTS[i]], coming[i]) for i in (1, 2)]
            return await asyncio.wait_for(asyncio.gather(first, *rest), 300)
        finally:
            worker.cancel()

    asyncio.run(main())
    assert batches == [3]


class Poisoned:
    """A classifier that raises on any batch holding the marker text (what an input the
    tokenizer cannot take used to do to the whole batch)."""

    MARK = "POISON"

    def __init__(self, inner: TextClassifier) -> None:
        self.inner, self.calls = inner, []

    @property
    def labels(self) -> list[str]:
        return self.inner.labels

    def predict_proba(self, texts, batch_size=128):
        self.calls.append(list(texts))
        if self.MARK in texts:
            raise RuntimeError("cannot tokenize this")
        return self.inner.predict_proba(texts, batch_size)


def test_a_failing_request_fails_alone(loaded):
    from dataclasses import replace

    from modelyard.serving.batcher import ModelFailed

    poisoned = Poisoned(loaded.classifier)
    model = replace(loaded, classifier=poisoned)
    batcher = MicroBatcher(lambda: model, max_batch_size=32, max_wait_ms=FOREVER_MS)
    requests = [[text] for text in TEXTS[:7]]
    requests.insert(4, [Poisoned.MARK])

    async def main():
        worker = asyncio.create_task(batcher.run())
        try:
            calls = [batcher.score(texts) for texts in requests]
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            worker.cancel()

    results = asyncio.run(main())
    assert len(poisoned.calls[0]) == 8  # they did share a batch
    assert isinstance(results[4], ModelFailed) and "cannot tokenize this" in str(results[4])
    expected = loaded.classifier.predict_proba(TEXTS[:7])
    good = [result for i, result in enumerate(results) if i != 4]
    for result, want in zip(good, expected, strict=True):
        np.testing.assert_allclose(result.probabilities[0], want, atol=1e-5)


class _Passes:
    """A classifier that records the pass size each call asked for."""

    def __init__(self, inner: TextClassifier, device: str) -> None:
        self.inner, self.device, self.sizes = inner, device, []

    @property
    def labels(self) -> list[str]:
        return self.inner.labels

    def predict_proba(self, texts, batch_size=128):
        self.sizes.append(batch_size)
        return self.inner.predict_proba(texts, batch_size)


@pytest.mark.parametrize(
    ("device", "chunk_size", "expected"),
    [("cpu", None, 8), ("cuda:0", None, 32), ("cpu", 4, 4), ("cuda", 16, 16)],
)
def test_a_batch_runs_in_passes_of_the_chunk_size(loaded, device, chunk_size, expected):
    """On a CPU a gathered batch runs in passes of 8 texts (each padded to its own longest), on
    a GPU in one; `serving.chunk_size` overrides both. The answers are the same either way."""
    from dataclasses import replace

    passes = _Passes(loaded.classifier, device)
    model = replace(loaded, classifier=passes)
    batcher = MicroBatcher(lambda: model, 32, 200, chunk_size=chunk_size)
    (result,) = _run(batcher, [TEXTS])
    assert passes.sizes == [expected]
    np.testing.assert_allclose(
        result.probabilities, loaded.classifier.predict_proba(TEXTS), atol=1e-5
    )


def test_the_cpu_pass_is_never_wider_than_the_batch():
    assert chunk_for("cpu", None, 4) == 4
    assert chunk_for("cpu", None, 64) == CPU_CHUNK
