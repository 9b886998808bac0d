"""Several processes, one model: PyTorch's own launcher (`torchrun`) and DistributedDataParallel.

`launch` starts `python -m torch.distributed.run --standalone --nproc_per_node N` on
`modelyard.orchestration.worker`; each worker joins the process group (NCCL on GPUs, gloo on CPUs),
the training loop wraps the model in DDP and gives each rank every N-th batch of the same
length-grouped order. Gradients are averaged across ranks once per optimizer step, in the last
micro-batch's backward pass (the others run under `no_sync`: `loop.accumulate_gradients`), so
one optimizer step sees `batch_size * grad_accumulation * nproc` texts: the global batch. The
learning rate is used as configured (no automatic scaling): raise it yourself when you raise
`nproc` a lot. Only rank 0 writes checkpoints, logs to MLflow and saves the model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def world() -> tuple[int, int]:
    """(world size, rank): (1, 0) outside a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def init() -> None:
    """Join the group torchrun describes in the environment (RANK, WORLD_SIZE, MASTER_ADDR…)."""
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")


def finish() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


class LaunchError(RuntimeError):
    pass


def launch(
    splits_dir: Path,
    params_path: Path,
    out_dir: Path,
    nproc: int,
    tracking_uri: str | None = None,
    run_id: str | None = None,
    checkpoints: Path | None = None,
) -> dict[str, Any]:
    """Train with `nproc` processes; returns what rank 0 reported (its TrainResult as a dict)."""
    report = out_dir.parent / f"{out_dir.name}.result.json"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "modelyard.orchestration.worker",
        "--splits",
        str(splits_dir),
        "--params",
        str(params_path),
        "--out",
        str(out_dir),
        "--report",
        str(report),
    ]
    if tracking_uri and run_id:
        command += ["--tracking-uri", tracking_uri, "--run-id", run_id]
    if checkpoints is not None:
        command += ["--checkpoints", str(checkpoints)]
    # Each process gets its share of the cores, not all of them each.
    env = {
        **os.environ,
        "OMP_NUM_THREADS": os.environ.get(
            "OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc))
        ),
    }
    finished = subprocess.run(command, env=env, capture_output=True, text=True)
    if finished.returncode != 0 or not report.is_file():
        raise LaunchError(
            f"torchrun with {nproc} processes failed (exit {finished.returncode}):\n"
            f"{finished.stderr[-4000:]}"
        )
    reported: dict[str, Any] = json.loads(report.read_text())
    return reported
