"""Resumable training state on disk.

A checkpoint is everything the loop needs to carry on as if it had never stopped: weights,
optimizer and scheduler state, the grad scaler, every RNG (Python, NumPy, torch, CUDA, and the
generator that orders batches, as it was at the start of the epoch), the position in the epoch,
the history so far and the best weights. It is written to a temporary name and renamed, so a kill
mid-write leaves the previous checkpoint intact; the newest complete one wins.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Any

import numpy as np

KEEP = 2


def training_key(dataset_md5: str, params_digest: str, model_name: str) -> str:
    """Same inputs → same key → same run directory: how a restarted retrain finds its work."""
    return hashlib.sha256(f"{model_name}:{dataset_md5}:{params_digest}".encode()).hexdigest()[:16]


def rng_state() -> dict[str, Any]:
    import torch

    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(directory: Path, step: int, state: dict[str, Any]) -> Path:
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step-{step:08d}.pt"
    partial = directory / f".step-{step:08d}.pt.partial"
    torch.save(state, partial)
    os.replace(partial, final)
    for old in sorted(directory.glob("step-*.pt"))[:-KEEP]:
        old.unlink(missing_ok=True)
    return final


def latest(directory: Path | None) -> Path | None:
    if directory is None or not directory.is_dir():
        return None
    found = sorted(directory.glob("step-*.pt"))
    return found[-1] if found else None


def load(path: Path) -> dict[str, Any]:
    import torch

    # Our own file, written by `save`: it holds NumPy RNG state, so not weights-only.
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    return state
