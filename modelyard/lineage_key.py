"""Nothing done twice: a retrain's lineage key, and whether a registered version already is
what this retrain would make.

The key is a hash of everything that decides a training's result: the dataset's bytes (DVC md5),
the params hash, a clean git commit of the code, and the environment (package versions, device,
precision, threads, deterministic algorithms). Two retrains with one key train the same model
(seeded, bit-identical on a CPU), so the second one has nothing to learn: `find_repeat` says which
version it would repeat. An uncommitted change (`-dirty`) or an unknown commit gives no key: the
code that would train is then not the code any version recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime

from modelyard import tags as tag
from modelyard.config import TrainParams
from modelyard.data.identity import DatasetVersion

_CLEAN_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Environment:
    """What decides a training's result besides the data, the params and the code."""

    modelyard: str
    torch: str
    transformers: str
    tokenizers: str
    numpy: str
    device: str  # cpu | cuda | mps
    accelerator: str  # the GPU's model and CUDA version on cuda; "-" elsewhere
    precision: str  # what the training computes in: fp32 | bf16 | fp16
    # torch's intra-op threads: a CPU sums in another order with another count.
    threads: int
    deterministic: bool  # torch.use_deterministic_algorithms

    def tags(self) -> dict[str, str]:
        names = {
            "modelyard": tag.ENV_MODELYARD,
            "torch": tag.ENV_TORCH,
            "transformers": tag.ENV_TRANSFORMERS,
            "tokenizers": tag.ENV_TOKENIZERS,
            "numpy": tag.ENV_NUMPY,
            "device": tag.ENV_DEVICE,
            "accelerator": tag.ENV_ACCELERATOR,
            "precision": tag.ENV_PRECISION,
            "threads": tag.ENV_THREADS,
            "deterministic": tag.ENV_DETERMINISTIC,
        }
        return {names[f.name]: str(getattr(self, f.name)).lower() for f in fields(self)}


def environment(train: TrainParams) -> Environment:
    """This process's environment for a training with `train`: the device it would pick and
    the precision that device resolves `train.precision` to (DP training computes in fp32)."""
    import numpy
    import tokenizers
    import torch
    import transformers

    import modelyard
    from modelyard.inference import pick_device
    from modelyard.training.loop import resolve_precision

    device = pick_device()
    try:
        precision = "fp32" if train.privacy.enabled else resolve_precision(device, train.precision)
    except ValueError:  # bf16/fp16 without a GPU: the training refuses it with its reason
        precision = train.precision
    accelerator = "-"
    if device == "cuda":
        accelerator = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return Environment(
        modelyard.__version__,
        torch.__version__,
        transformers.__version__,
        tokenizers.__version__,
        numpy.__version__,
        device,
        accelerator,
        precision,
        train.threads or torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
    )


def clean_commit(commit: str) -> bool:
    """A full commit id with no uncommitted change on top (`-dirty`) and not `unknown`."""
    return bool(_CLEAN_COMMIT.fullmatch(commit))


@dataclass(frozen=True)
class LineageKey:
    """A retrain's key parts: the dataset, the params hash, the code's commit, the
    environment."""

    dataset: DatasetVersion
    params_hash: str
    code_commit: str
    environment: Environment

    @property
    def value(self) -> str | None:
        """The key (a hash of every part); None when the commit is not clean: such a run
        repeats no version and no later run repeats it."""
        if not clean_commit(self.code_commit):
            return None
        parts = {
            tag.DATASET_MD5: self.dataset.md5,
            tag.PARAMS_HASH: self.params_hash,
            tag.CODE_COMMIT: self.code_commit,
            **self.environment.tags(),
        }
        payload = json.dumps(parts, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def trained_on(self, device: str, precision: str) -> LineageKey:
        """The key of the training as it ran (the device and precision it reports)."""
        ran = replace(self.environment, device=device, precision=precision)
        return replace(self, environment=ran)

    def tags(self) -> dict[str, str]:
        """The version's tags: the key (when there is one) and its parts that are not lineage
        tags already (the dataset md5 and params hash are)."""
        key = self.value
        return {
            **({tag.LINEAGE_KEY: key} if key is not None else {}),
            tag.CODE_COMMIT: self.code_commit,
            **self.environment.tags(),
        }

    def no_key_reason(self) -> str:
        if self.code_commit.endswith("-dirty"):
            return (
                f"the code's git tree has uncommitted changes ({self.code_commit}): a retrain "
                "repeats a version only from a clean commit"
            )
        return (
            f"the code's git commit is {self.code_commit!r}, not a clean commit: a retrain "
            "repeats a version only from one"
        )


@dataclass(frozen=True)
class RecordedVersion:
    """A registered version as the registry recorded it."""

    version: str
    registered: datetime
    tags: Mapping[str, str]
    # Its retrain's MLflow run ended FINISHED: a killed or failed one is resumed, not repeated.
    run_finished: bool


@dataclass(frozen=True)
class Repeat:
    """What `find_repeat` found: the version this retrain would make again, or why it trains."""

    version: RecordedVersion | None
    reasons: tuple[str, ...] = ()

    def line(self) -> str:
        """`identical to version N (registered …, gate decision …)`; why it trains otherwise."""
        found = self.version
        if found is None:
            return "retraining: " + "; ".join(self.reasons)
        when = found.registered.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
        outcome = f"gate decision {found.tags.get(tag.GATE_DECISION, 'not recorded')}"
        approval = found.tags.get(tag.APPROVAL)
        if approval is not None:
            outcome += f", approval {approval}"
        return f"identical to version {found.version} (registered {when}, {outcome})"


def find_repeat(
    key: LineageKey,
    candidates: Sequence[RecordedVersion],
    split_md5: str | None,
    production: str | None,
) -> Repeat:
    """The registered version this retrain would repeat: the same key (a clean commit), its
    retrain finished, and trained on the same split (`split_md5`: this run's, inherited from
    the production model). A rejected version counts (the same inputs meet the same rejection)
    while production is still the version it was judged against; a version whose deploy check
    failed does not (its promotion never held). The oldest such version wins."""
    value = key.value
    if value is None:
        return Repeat(None, (key.no_key_reason(),))
    reasons = []
    for found in sorted(candidates, key=lambda c: int(c.version)):
        why_not = _why_not(found, value, split_md5, production)
        if why_not is None:
            return Repeat(found)
        reasons.append(f"version {found.version} {why_not}")
    return Repeat(None, tuple(reasons) or ("no registered version has this lineage key",))


def _why_not(
    found: RecordedVersion, key: str, split_md5: str | None, production: str | None
) -> str | None:
    tags = found.tags
    if tags.get(tag.LINEAGE_KEY) != key:
        return "has another lineage key"
    if not found.run_finished:
        return "is from a retrain that did not finish (it resumes)"
    if tags.get(tag.DEPLOY) == tag.DEPLOY_FAILED:
        return "failed its deploy check"
    if split_md5 is None or tags.get(tag.SPLIT_MD5) != split_md5:
        return "trained on another split (production's split is inherited)"
    judged = tags.get(tag.JUDGED_AGAINST)
    if tags.get(tag.REJECTED) == tag.TRUE and judged != (production or tag.NO_VERSION):
        return f"was rejected against production version {judged}, not the current one"
    return None
