"""Model tests on the tiny BERT: resume is exact, training is deterministic, early stopping stops,
gradient accumulation is one big batch, bad training config is refused before any work."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from modelyard.data import dataset as ds
from modelyard.training.fit import fit


@pytest.fixture(scope="module")
def splits(tiny_params, small_reviews):
    frame = ds.to_canonical(ds.read_frame(small_reviews), tiny_params.data).head(600)
    return ds.split(frame, tiny_params.data)


def train(splits, params, **kwargs):
    return fit(splits, params, Path(tempfile.mkdtemp()) / "model", progress=False, **kwargs)


def test_same_seed_same_metrics(splits, tiny_params):
    params = tiny_params.updated({"train.epochs": 2})
    first, second = train(splits, params), train(splits, params)
    for a, b in zip(first.result.history, second.result.history, strict=True):
        assert a == pytest.approx(b, abs=1e-6)
    other = train(splits, params.updated({"train.seed": 7}))
    assert other.result.history != first.result.history


def test_resume_after_an_interruption_is_exact(splits, tiny_params, tmp_path):
    params = tiny_params.updated(
        {
            "train.epochs": 3,
            "train.checkpoint_every": 5,
            "train.batch_size": 16,
            "train.grad_accumulation": 2,
        }
    )
    uninterrupted = train(splits, params)

    class Killed(Exception):
        pass

    def die(step: int, _: dict) -> None:
        if step == 22:
            raise Killed

    with pytest.raises(Killed):
        train(splits, params, checkpoints=tmp_path, on_step=die)
    saved = sorted(p.name for p in tmp_path.glob("step-*.pt"))
    assert saved == ["step-00000015.pt", "step-00000020.pt"]  # the two newest are kept
    resumed = train(splits, params, checkpoints=tmp_path)
    assert resumed.result.resumed_from_step == 20
    assert resumed.result.steps == uninterrupted.result.steps
    assert resumed.result.history == uninterrupted.result.history  # bit for bit


def test_resume_from_an_epoch_boundary_is_exact(splits, tiny_params, tmp_path):
    """The checkpoint written as an epoch ends holds none of that epoch's step losses: the next
    epoch's train_loss after a resume is the uninterrupted one."""
    params = tiny_params.updated(
        {"train.epochs": 3, "train.checkpoint_every": 10_000, "train.batch_size": 16}
    )
    uninterrupted = train(splits, params)
    per_epoch = uninterrupted.result.steps // 3

    class Killed(Exception):
        pass

    def die(step: int, _: dict) -> None:
        if step == 2 * per_epoch + 1:
            raise Killed

    with pytest.raises(Killed):
        train(splits, params, checkpoints=tmp_path, on_step=die)
    resumed = train(splits, params, checkpoints=tmp_path)
    assert resumed.result.resumed_from_step == 2 * per_epoch
    assert resumed.result.history == uninterrupted.result.history


def test_early_stopping(splits, tiny_params):
    # A learning rate this small cannot move macro-F1 off its first value.
    params = tiny_params.updated(
        {"train.epochs": 8, "train.learning_rate": 1e-9, "train.early_stopping_patience": 2}
    )
    result = train(splits, params).result
    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == 1


def test_gradient_accumulation_equals_one_big_batch(splits, tiny_params):
    big = tiny_params.updated({"train.epochs": 1, "train.batch_size": 32})
    accumulated = big.updated({"train.batch_size": 16, "train.grad_accumulation": 2})
    a, b = train(splits, big).result, train(splits, accumulated).result
    assert a.steps == b.steps
    # Not bit-identical: the batches are cut from other lengths; the same optimisation though.
    assert abs(a.history[0]["train_loss"] - b.history[0]["train_loss"]) < 0.05


@pytest.mark.parametrize(
    "change, message",
    [
        ({"train.batch_size": 0}, "train.batch_size: Input should be greater than or equal to 1"),
        ({"train.grad_accumulation": 0}, "train.grad_accumulation"),
        ({"model.backbone": "no/such/model"}, "neither 'minilm', 'tiny' nor a model directory"),
        ({"train.precision": "bf16"}, "train.precision=bf16 needs a CUDA GPU"),
    ],
)
def test_bad_training_config_is_refused_before_any_work(change, message, repo, tmp_path):
    from typer.testing import CliRunner

    from modelyard.cli import app

    key, value = next(iter(change.items()))
    result = CliRunner().invoke(
        app,
        [
            "retrain",
            "--params",
            str(repo / "params.yaml"),
            "--data",
            str(tmp_path / "never-read.csv"),
            "--set",
            f"{key}={value}",
        ],
    )
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not list(tmp_path.iterdir())  # nothing was read or written


@pytest.mark.parametrize(
    "change, message",
    [
        ({"train.nproc": 2}, "set train.nproc and train.nnodes to 1"),
        ({"train.nnodes": 2}, "set train.nproc and train.nnodes to 1"),
        ({"train.grad_accumulation": 2}, "set train.grad_accumulation to 1"),
        ({"train.precision": "bf16"}, "trains in fp32"),
        ({"train.max_steps": 10}, "unset train.max_steps"),
        ({"train.privacy.target_epsilon": 0}, "train.privacy.target_epsilon"),
        ({"train.privacy.target_delta": 1.5}, "train.privacy.target_delta"),
    ],
)
def test_dp_settings_that_cannot_hold_are_refused(tiny_params, change, message):
    from modelyard.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        tiny_params.updated({"train.privacy.enabled": True, **change})


def test_dp_fine_tune_spends_at_most_its_budget_reproducibly(splits, tiny_params):
    import math

    from safetensors.torch import load_file

    params = tiny_params.updated(
        {"train.epochs": 2, "train.privacy.enabled": True, "train.privacy.target_epsilon": 3.0}
    )
    first, second = train(splits, params), train(splits, params)
    result = first.result
    assert math.isfinite(result.epsilon) and 0 < result.epsilon <= 3.0 + 1e-6
    assert result.delta == 1e-5 and result.noise_multiplier > 0
    assert [r["dp_epsilon"] for r in result.history] == sorted(
        r["dp_epsilon"] for r in result.history
    )
    # Same seed: the same Poisson batches, the same noise, the same weights.
    assert second.result.epsilon == result.epsilon
    a = load_file(first.model_dir / "model.safetensors")
    b = load_file(second.model_dir / "model.safetensors")
    assert all((a[k] == b[k]).all() for k in a)
    # A tighter budget takes more noise for the same training.
    tighter = train(splits, params.updated({"train.privacy.target_epsilon": 1.0})).result
    assert tighter.noise_multiplier > result.noise_multiplier and tighter.epsilon <= 1.0 + 1e-6
    # The embeddings stayed as they were built (frozen); the encoder moved.
    import torch

    from modelyard.training.loop import seed_everything
    from modelyard.training.model import build_model

    seed_everything(params.train.seed)
    fresh, _ = build_model(params.model, list(params.data.labels), splits.train["text"].tolist())
    embeddings = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(a[embeddings], fresh.state_dict()[embeddings])
    layer = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(a[layer], fresh.state_dict()[layer])


def _torchrun_env(node: int, local: int, per_node: int = 2, nodes: int = 3) -> dict[str, str]:
    return {
        "MODELYARD_NODE_RANK": str(node),
        "LOCAL_RANK": str(local),
        "LOCAL_WORLD_SIZE": str(per_node),
        "GROUP_WORLD_SIZE": str(nodes),
        "WORLD_SIZE": str(per_node * nodes),
    }


def test_each_process_joins_under_its_node_and_local_rank_whatever_c10d_numbered():
    from modelyard.training.distributed import place

    places = [place(_torchrun_env(node, local)) for node in range(3) for local in range(2)]
    assert places == list(range(6))  # rank 0: node 0's first process, which logs and saves
    assert place({"LOCAL_RANK": "1"}) is None  # one machine: torchrun's own rank
    uneven = {**_torchrun_env(1, 0), "WORLD_SIZE": "5"}  # a node started with another --nproc
    with pytest.raises(RuntimeError, match="same --nproc"):
        place(uneven)


def test_nodes_meet_at_a_c10d_endpoint_that_node_0_hosts():
    from modelyard.training.distributed import Nodes, _torchrun

    assert "--standalone" in _torchrun(2, Nodes())
    first = _torchrun(4, Nodes(2, 0, "trainer-0.train:29400"))
    assert "--standalone" not in first and "--nproc_per_node=4" in first
    assert {"--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=trainer-0.train:29400"} <= set(
        first
    )
    assert any(a.startswith("--rdzv-conf=is_host=1,") for a in first)
    assert any(a.startswith("--rdzv-conf=is_host=0,") for a in _torchrun(4, Nodes(2, 1, "h:1")))
    for count, rank, endpoint in [(2, 0, None), (2, 0, "no-port"), (2, 2, "h:1"), (0, 0, None)]:
        with pytest.raises(ValueError):
            Nodes(count, rank, endpoint)


def test_a_joining_node_without_an_endpoint_is_refused_having_read_nothing(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from modelyard.cli import app

    monkeypatch.delenv("MODELYARD_RDZV_ENDPOINT", raising=False)
    absent = tmp_path / "absent.yaml"
    args = ["train", "--nnodes", "2", "--node-rank", "1", "--params", str(absent)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "needs a rendezvous endpoint HOST:PORT" in " ".join(result.output.split())


def test_a_remote_retrain_sizes_the_job_only_on_a_pool_that_takes_a_size():
    from types import SimpleNamespace

    from modelyard.cli._common import Refused
    from modelyard.cli._follow import _job_size

    def client(variables: dict[str, object]) -> SimpleNamespace:
        pool = SimpleNamespace(name="p", base_job_template={"variables": {"properties": variables}})
        return SimpleNamespace(
            read_deployment_by_name=lambda name: SimpleNamespace(work_pool_name="p"),
            read_work_pool=lambda name: pool,
        )

    sized = client({"nodes": {}, "gpus_per_node": {}, "image": {}})
    assert _job_size(sized, "retrain/retrain-gpu", (2, 4)) == {"nodes": 2, "gpus_per_node": 4}
    process_pool = client({"working_dir": {}})
    assert _job_size(process_pool, "retrain/retrain", (1, 2)) is None
    with pytest.raises(Refused, match="--deployment retrain-gpu"):
        _job_size(process_pool, "retrain/retrain", (2, 1))
