"""One torchrun process: join the group, train on the prepared splits, and on rank 0 log to
MLflow, save the model and report. Run by `modelyard.training.distributed.launch`."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--splits", type=Path, required=True)
    parser.add_argument("--params", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--tracking-uri")
    parser.add_argument("--run-id")
    parser.add_argument("--checkpoints", type=Path)
    args = parser.parse_args()

    from modelyard.config import load_params
    from modelyard.data.dataset import Splits
    from modelyard.env import apply_defaults
    from modelyard.training import distributed
    from modelyard.training.fit import fit

    apply_defaults()
    distributed.init()
    _, rank = distributed.world()
    on_step = on_epoch = None
    if rank == 0 and args.tracking_uri and args.run_id:
        from modelyard.config import Settings
        from modelyard.registry.mlflow_registry import MlflowRegistry
        from modelyard.tags import epoch_metrics, step_metrics

        registry = MlflowRegistry(args.tracking_uri, Settings().experiment)
        run_id = args.run_id
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

    trained = fit(
        Splits.load(args.splits),
        load_params(args.params),
        args.out,
        on_step=on_step,
        on_epoch=on_epoch,
        progress=False,
        checkpoints=args.checkpoints,
    )
    if rank == 0:
        args.report.write_text(
            json.dumps({**asdict(trained.result), "parameters": trained.parameters})
        )
    distributed.finish()


if __name__ == "__main__":
    main()
