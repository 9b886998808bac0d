"""The tiny model on a CUDA GPU: it trains in mixed precision (bf16 where the GPU has it, else
fp16 with a grad scaler), reports the GPU's peak memory, and the model it saves answers as it
did on the GPU once loaded on a machine without one. Marked `gpu`: skipped without CUDA (every
other test runs wherever torch picks, the CPU on CI)."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def splits(tiny_params, small_reviews):
    from modelyard.data import dataset as ds

    frame = ds.to_canonical(ds.read_frame(small_reviews), tiny_params.data).head(600)
    return ds.split(frame, tiny_params.data)


def test_mixed_precision_training_on_the_gpu_saves_a_model_the_cpu_reads(
    splits, tiny_params, tmp_path
):
    import torch

    from modelyard.inference import TextClassifier
    from modelyard.training.fit import fit

    params = tiny_params.updated({"train.epochs": 2, "train.precision": "auto"})
    trained = fit(splits, params, tmp_path / "model", progress=False)
    result = trained.result
    assert result.device == "cuda"
    assert result.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    assert len(result.history) == 2
    assert all(math.isfinite(epoch["train_loss"]) for epoch in result.history)
    assert result.peak_memory_mb > 0  # torch.cuda.max_memory_allocated, not the process RSS

    texts = splits.test["text"].tolist()[:64]
    on_gpu = TextClassifier.load(trained.model_dir, device="cuda").predict_proba(texts)
    on_cpu = TextClassifier.load(trained.model_dir, device="cpu").predict_proba(texts)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-2)  # TF32 matmuls, if enabled
