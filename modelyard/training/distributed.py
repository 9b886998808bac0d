"""Several processes, one model: PyTorch's own launcher (`torchrun`) and DistributedDataParallel.

`launch` starts `python -m torch.distributed.run --standalone --nproc_per_node N` on
`modelyard.orchestration.worker`; each worker joins the process group (NCCL on GPUs, gloo on CPUs),
the training loop wraps the model in DDP and gives each rank every N-th batch of the same
length-grouped order. Gradients are averaged across ranks once per optimizer step, in the last
micro-batch's backward pass (the others run under `no_sync`: `loop.accumulate_gradients`), so
one optimizer step sees `batch_size * grad_accumulation * nproc` texts: the global batch. The
learning rate is used as configured (no automatic scaling): raise it yourself when you raise
`nproc` a lot. Only rank 0 writes checkpoints, logs to MLflow and saves the model.

Across machines (`train.nnodes` > 1) every machine starts torchrun with the same
`--nproc_per_node` and meets the others at one c10d rendezvous endpoint (HOST:PORT). c10d
numbers its ranks in its own order (sorted by host name), so each process joins the training's
process group under its own rank instead (`place`: node rank × processes per node + local rank,
the node rank being what `launch`/`join` were told): rank 0 is on node 0, where the retrain or
`modelyard train --node-rank 0` runs, logs and saves. Only rank 0 reads the data and params:
`share` sends them to every process when the group forms, so a joining machine needs the image
and the endpoint, nothing else, and cannot train on other data than node 0's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

# The node rank `launch`/`join` give every process they start (c10d has no fixed node rank).
NODE_RANK_ENV = "MODELYARD_NODE_RANK"
# One rendezvous per endpoint: all machines of a job must name the same id.
RDZV_ID = "modelyard"
RDZV_WAIT_S = 600

T = TypeVar("T")


@dataclass(frozen=True)
class Nodes:
    """The machines of one training job: `count` of them, this one `rank` (0: the one that
    reads the data, logs and saves), meeting at `endpoint` (HOST:PORT; needed when count > 1)."""

    count: int = 1
    rank: int = 0
    endpoint: str | None = None

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.rank < self.count:
            raise ValueError(f"node rank {self.rank} is not one of {self.count} node(s)")
        if self.count > 1 and not _is_endpoint(self.endpoint):
            raise ValueError(
                f"training on {self.count} nodes needs a rendezvous endpoint HOST:PORT that "
                "every node reaches (--rdzv-endpoint or MODELYARD_RDZV_ENDPOINT), "
                f"got {self.endpoint!r}"
            )


def _is_endpoint(endpoint: str | None) -> bool:
    host, _, port = (endpoint or "").rpartition(":")
    return bool(host) and port.isdigit()


def world() -> tuple[int, int]:
    """(world size, rank): (1, 0) outside a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def place(environ: Mapping[str, str]) -> int | None:
    """This process's rank in the group `init` forms: node rank × processes per node + local
    rank (None: the rank torchrun gave, on one machine). c10d's own rank order (by host name)
    could put rank 0, the one that logs and saves, on a machine other than node 0; and
    transformers' `save_pretrained` writes only on rank 0."""
    node = environ.get(NODE_RANK_ENV)
    if node is None:
        return None
    per_node, nodes = int(environ["LOCAL_WORLD_SIZE"]), int(environ["GROUP_WORLD_SIZE"])
    if per_node * nodes != int(environ["WORLD_SIZE"]):
        raise RuntimeError(
            f"{environ['WORLD_SIZE']} processes on {nodes} nodes, {per_node} on this one: start "
            "every node with the same --nproc / train.nproc"
        )
    return int(node) * per_node + int(environ["LOCAL_RANK"])


def share(payload: T | None) -> T:
    """What rank 0 passes in, on every process (pickled over the process group)."""
    import torch.distributed as dist

    if world()[0] > 1:
        box = [payload]
        dist.broadcast_object_list(box, src=0)
        payload = box[0]
    if payload is None:
        raise RuntimeError("rank 0 shared nothing")
    return payload


def init() -> None:
    """Join the group torchrun describes in the environment (WORLD_SIZE, MASTER_ADDR…), as the
    rank `place` gives."""
    import torch
    import torch.distributed as dist

    rank = place(os.environ)
    numbered = {} if rank is None else {"rank": rank, "world_size": int(os.environ["WORLD_SIZE"])}
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl", **numbered)
    else:
        dist.init_process_group("gloo", **numbered)


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
    nodes: Nodes | None = None,
) -> dict[str, Any]:
    """Train with `nproc` processes (on each of `nodes`, this one node 0); returns what place 0
    reported (its TrainResult as a dict)."""
    nodes = nodes or Nodes()
    if nodes.rank != 0:
        raise ValueError("only node 0 launches with the data; the others `join`")
    report = out_dir.parent / f"{out_dir.name}.result.json"
    report.unlink(missing_ok=True)
    worker = ["--splits", str(splits_dir), "--params", str(params_path), "--out", str(out_dir)]
    worker += ["--report", str(report)]
    if tracking_uri and run_id:
        worker += ["--tracking-uri", tracking_uri, "--run-id", run_id]
    if checkpoints is not None:
        worker += ["--checkpoints", str(checkpoints)]
    _run(_torchrun(nproc, nodes) + worker, nproc, nodes)
    if not report.is_file():
        raise LaunchError(f"torchrun with {nproc} processes wrote no report at {report}")
    reported: dict[str, Any] = json.loads(report.read_text())
    return reported


def join(nproc: int, nodes: Nodes) -> None:
    """Node `nodes.rank` (> 0) of a multi-node training: `nproc` processes that train their
    share of what node 0 sends them, write nothing and return when the training ends."""
    if nodes.rank == 0 or nodes.count == 1:
        raise ValueError("node 0 launches the training (`launch`); join with a node rank > 0")
    _run(_torchrun(nproc, nodes), nproc, nodes)


def _torchrun(nproc: int, nodes: Nodes) -> list[str]:
    """`python -m torch.distributed.run … -m modelyard.orchestration.worker`."""
    if nodes.count == 1:
        where = ["--standalone"]
    else:  # c10d: whichever machine starts first waits for the others
        where = [
            f"--nnodes={nodes.count}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={nodes.endpoint}",
            f"--rdzv-id={RDZV_ID}",
            # Node 0 hosts the rendezvous store, whatever name the endpoint gives it (torchrun
            # would guess from the host name); the others wait up to RDZV_WAIT_S for it to come
            # up (a pod that starts before node 0's image is pulled).
            f"--rdzv-conf=is_host={int(nodes.rank == 0)},read_timeout={RDZV_WAIT_S}",
        ]
    launcher = [sys.executable, "-m", "torch.distributed.run", *where]
    return [*launcher, f"--nproc_per_node={nproc}", "-m", "modelyard.orchestration.worker"]


def _run(command: list[str], nproc: int, nodes: Nodes) -> None:
    # Each process gets its share of the cores, not all of them each.
    threads = os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    env = {**os.environ, "OMP_NUM_THREADS": threads, NODE_RANK_ENV: str(nodes.rank)}
    finished = subprocess.run(command, env=env, capture_output=True, text=True)
    if finished.returncode != 0:
        where = f" on node {nodes.rank} of {nodes.count}" if nodes.count > 1 else ""
        raise LaunchError(
            f"torchrun with {nproc} processes{where} failed (exit {finished.returncode}):\n"
            f"{finished.stderr[-4000:]}"
        )
