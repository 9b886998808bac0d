"""One torchrun process: join the group, train on the prepared splits, and on rank 0 log to
MLflow, save the model and report. Run by `modelyard.training.distributed.launch` (node 0: it
names the splits, params and outputs) and `join` (other nodes: no arguments, place 0 sends the
splits, params and checkpoint folder over the process group)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelyard.config import Params
    from modelyard.data.dataset import Splits
    from modelyard.training.loop import EpochCallback, StepCallback


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--splits", type=Path)
    parser.add_argument("--params", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--report", type=Path)
    parser.add_argument("--tracking-uri")
    parser.add_argument("--run-id")
    parser.add_argument("--checkpoints", type=Path)
    args = parser.parse_args()

    from modelyard.env import apply_defaults
    from modelyard.training import distributed
    from modelyard.training.fit import fit

    apply_defaults()
    distributed.init()
    _, rank = distributed.world()
    splits, params, checkpoints = distributed.share(_read(args) if rank == 0 else None)
    on_step, on_epoch = _tracking(args.tracking_uri, args.run_id) if rank == 0 else (None, None)
    trained = fit(
        splits,
        params,
        args.out or Path("model"),  # only place 0 saves (under the name node 0 gave)
        on_step=on_step,
        on_epoch=on_epoch,
        progress=False,
        checkpoints=checkpoints,
    )
    if rank == 0:
        args.report.write_text(
            json.dumps({**asdict(trained.result), "parameters": trained.parameters})
        )
    distributed.finish()


def _read(args: argparse.Namespace) -> tuple[Splits, Params, Path | None]:
    """What every process trains on: node 0's splits, params and checkpoint folder (another
    node resumes from the same folder only where it is shared storage, mounted at that path)."""
    from modelyard.config import load_params
    from modelyard.data.dataset import Splits

    if args.splits is None or args.params is None or args.out is None or args.report is None:
        raise SystemExit("place 0 needs --splits, --params, --out and --report")
    return Splits.load(args.splits), load_params(args.params), args.checkpoints


def _tracking(
    tracking_uri: str | None, run_id: str | None
) -> tuple[StepCallback | None, EpochCallback | None]:
    """Place 0's callbacks: per-step metrics in batches of 10, each epoch's figures."""
    if not (tracking_uri and run_id):
        return None, None
    from modelyard.config import Settings
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.tags import epoch_metrics, step_metrics

    registry = MlflowRegistry(tracking_uri, Settings().experiment)
    pending: list[tuple[int, dict[str, float]]] = []

    def on_step(step: int, values: dict[str, float]) -> None:
        pending.append((step, step_metrics(values)))
        if len(pending) >= 10:
            registry.log_metric_steps(run_id, pending)
            pending.clear()

    def on_epoch(epoch: int, record: dict[str, float]) -> None:
        registry.log_metric_steps(run_id, pending)
        pending.clear()
        registry.log_metrics(run_id, epoch_metrics(record), step=epoch)

    return on_step, on_epoch


if __name__ == "__main__":
    main()
