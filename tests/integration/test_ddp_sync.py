"""DDP with gradient accumulation on two gloo processes, through the loop's own micro-step code
(`accumulate_gradients`): one all-reduce per gradient bucket per optimizer step, in the last
micro-batch's backward pass, none in the others; both ranks end the step with the same
gradients, the average of what each accumulated alone."""

from __future__ import annotations

import json
import os
import socket
from datetime import timedelta
from pathlib import Path

ACCUMULATE, STEPS, WORLD = 4, 3, 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _flat_grads(model) -> list[float]:
    import torch

    return torch.cat([p.grad.flatten() for p in model.parameters()]).tolist()


def _worker(rank: int, port: int, out: str) -> None:
    """One rank: STEPS optimizer steps of ACCUMULATE micro-batches, then one step the old way
    (every backward synced). Writes what it counted and the gradients it saw."""
    import copy

    import torch
    import torch.distributed as dist
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    from torch.nn.parallel import DistributedDataParallel

    from modelyard.training.loop import accumulate_gradients

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    # A bounded wait: a lost peer fails the test instead of hanging it.
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=timedelta(seconds=60))
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    ddp = DistributedDataParallel(model)
    all_reduces: list[int] = []

    def counting_allreduce(state, bucket):  # DDP calls it once per bucket it reduces
        all_reduces.append(1)
        return allreduce_hook(None, bucket)

    ddp.register_comm_hook(None, counting_allreduce)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
    data = torch.Generator().manual_seed(100 + rank)  # each rank its own micro-batches
    per_micro_step: list[int] = []

    def micro_loss(batch):
        inputs, labels = batch
        return torch.nn.functional.cross_entropy(ddp(inputs), labels) / ACCUMULATE

    def backward(loss) -> None:
        before = len(all_reduces)
        loss.backward()
        per_micro_step.append(len(all_reduces) - before)

    def micro_batches():
        return [
            (torch.randn(4, 8, generator=data), torch.randint(0, 3, (4,), generator=data))
            for _ in range(ACCUMULATE)
        ]

    report: dict[str, list] = {
        "counts": [],
        "grads": [],
        "local": [],
        "losses": [],
        "local_losses": [],
    }
    for _ in range(STEPS):
        batches = micro_batches()
        # What this rank alone accumulates, from the same weights: the input to the average.
        alone = copy.deepcopy(model)
        local_loss = 0.0
        for inputs, labels in batches:
            loss = torch.nn.functional.cross_entropy(alone(inputs), labels) / ACCUMULATE
            loss.backward()
            local_loss += loss.item()
        per_micro_step.clear()
        report["losses"].append(accumulate_gradients(ddp, batches, micro_loss, backward))
        report["counts"].append(list(per_micro_step))
        report["grads"].append(_flat_grads(model))
        report["local"].append(_flat_grads(alone))
        report["local_losses"].append(local_loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    per_micro_step.clear()  # the old way: every micro-batch's backward syncs
    for batch in micro_batches():
        backward(micro_loss(batch))
    report["unsynced_counts"] = list(per_micro_step)
    Path(out, f"rank{rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


def test_one_all_reduce_per_bucket_per_optimizer_step_and_equal_gradients(tmp_path):
    import numpy as np
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]

    buckets = ranks[0]["counts"][0][-1]  # what the step's one synced backward reduced
    assert buckets >= 1
    for report in ranks:
        # Nothing crosses the wire until the last micro-batch; then each bucket once.
        assert report["counts"] == [[0] * (ACCUMULATE - 1) + [buckets]] * STEPS
        # Without no_sync every backward would all-reduce: ACCUMULATE times as many.
        assert report["unsynced_counts"] == [buckets] * ACCUMULATE
        np.testing.assert_allclose(report["losses"], report["local_losses"], rtol=1e-6)
    for step in range(STEPS):
        assert ranks[0]["grads"][step] == ranks[1]["grads"][step]  # bit for bit
        average = np.mean([report["local"][step] for report in ranks], axis=0)
        np.testing.assert_allclose(ranks[0]["grads"][step], average, rtol=1e-5, atol=1e-7)
