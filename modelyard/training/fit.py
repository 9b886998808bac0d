"""The training stage: one entry function taking the splits and the whole params tree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelyard.config import Params
from modelyard.data.dataset import LABEL, TEXT, Splits
from modelyard.inference import TextClassifier
from modelyard.training.cost import ComputeCost, gate_compute
from modelyard.training.loop import (
    EpochCallback,
    StepCallback,
    TrainResult,
    seed_everything,
    train_classifier,
)
from modelyard.training.model import build_model


@dataclass(frozen=True)
class Trained:
    model_dir: Path
    result: TrainResult
    parameters: int
    cost: ComputeCost | None = None  # this attempt (set by the train task)
    cost_total: dict[str, float] | None = None  # every attempt of the run, summed

    def compute(self) -> dict[str, float | str]:
        """What it cost, as the gate report shows it."""
        return gate_compute(self.cost, self.cost_total)


def fit(
    splits: Splits,
    params: Params,
    out_dir: Path,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
    progress: bool | None = None,
    checkpoints: Path | None = None,
) -> Trained:
    """Build the model, fine-tune it on `splits.train` (selecting on `splits.val`), save it.
    With `checkpoints`, training resumes from the newest checkpoint there."""
    # Seed before building: the classification head (and the whole tiny model) is initialised
    # from the global RNG.
    seed_everything(params.train.seed)
    labels = list(params.data.labels)
    label_id = {label: i for i, label in enumerate(labels)}
    train_texts = splits.train[TEXT].tolist()
    model, tokenizer = build_model(params.model, labels, train_texts)
    data = (
        train_texts,
        [label_id[label] for label in splits.train[LABEL]],
        splits.val[TEXT].tolist(),
        [label_id[label] for label in splits.val[LABEL]],
    )
    if params.train.privacy.enabled:
        from modelyard.training.private import train_private

        result = train_private(
            model, tokenizer, *data, params.train, on_step=on_step, on_epoch=on_epoch
        )
    else:
        result = train_classifier(
            model,
            tokenizer,
            *data,
            params.train,
            on_step=on_step,
            on_epoch=on_epoch,
            progress=progress,
            checkpoints=checkpoints,
        )
    from modelyard.training import distributed

    _, rank = distributed.world()
    # Under torchrun every rank holds the same weights; one writes them.
    model_dir = TextClassifier(model, tokenizer, "cpu").save(out_dir) if rank == 0 else out_dir
    return Trained(model_dir, result, sum(p.numel() for p in model.parameters()))


def fit_distributed(
    prepared: Path,
    params: Params,
    out_dir: Path,
    tracking_uri: str | None = None,
    run_id: str | None = None,
    checkpoints: Path | None = None,
    rendezvous: str | None = None,
) -> Trained:
    """`fit` in `train.nproc` torchrun processes on the splits saved under `prepared`
    (`Splits.save`), on each of `train.nnodes` machines meeting at `rendezvous` (HOST:PORT; this
    one node 0, the others `distributed.join`); place 0 logs to the MLflow run `run_id` when one
    is given."""
    import tempfile

    import yaml

    from modelyard.training.distributed import Nodes, launch

    nodes = Nodes(params.train.nnodes, 0, rendezvous)
    with tempfile.TemporaryDirectory() as scratch:
        frozen = Path(scratch) / "params.yaml"
        frozen.write_text(yaml.safe_dump(params.model_dump(mode="json")))
        report = launch(
            prepared, frozen, out_dir, params.train.nproc, tracking_uri, run_id, checkpoints, nodes
        )
    parameters = int(report.pop("parameters"))
    return Trained(out_dir, TrainResult(**report), parameters)
