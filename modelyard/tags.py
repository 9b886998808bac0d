"""Every name ModelYard writes into the MLflow registry and tracking server: aliases, model-version
tags, run tags. One module, so a tag is spelled once.

It sits in the core (plain constants) because the core's rules read what the tags say (the
promotion rule book, the monitor's trust in a test accuracy) and the adapters and tasks write
them; the registry adapter never invents a name of its own.
"""

from __future__ import annotations

# Aliases: what serving, batch prediction and the monitor follow.
PRODUCTION = "production"
STAGING = "staging"
# A candidate on trial against production in a shadow or canary rollout (modelyard.rollout).
CHALLENGER = "challenger"

TRUE = "true"

# Lineage: enough to answer "what made this model?" from the registry alone.
DATASET_MD5 = "dataset_md5"
DATASET_PATH = "dataset_path"
GIT_COMMIT = "git_commit"
PARAMS_HASH = "params_hash"
PREFECT_FLOW_RUN_ID = "prefect_flow_run_id"
MLFLOW_RUN_ID = "mlflow_run_id"
VALIDATION = "validation"
TEST_ACCURACY = "test_accuracy"
TEST_MACRO_F1 = "test_macro_f1"
# How much the test accuracy can be trusted: the monitor weighs live accuracy against it.
TEST_ROWS = "test_rows"
# The md5 of the version's split membership (which split every training text went to).
SPLIT_MD5 = "split_md5"

# Nothing done twice (modelyard.lineage_key): the hash of what decides a training's result
# (dataset md5, params hash, a clean commit of the code, the environment) and the parts that are
# not tags already. A retrain with a registered version's key trains nothing.
LINEAGE_KEY = "lineage_key"
CODE_COMMIT = "code_commit"  # the code's commit (`-dirty` with uncommitted changes)
ENV_MODELYARD = "env.modelyard"
ENV_TORCH = "env.torch"
ENV_TRANSFORMERS = "env.transformers"
ENV_TOKENIZERS = "env.tokenizers"
ENV_NUMPY = "env.numpy"
ENV_DEVICE = "env.device"
ENV_ACCELERATOR = "env.accelerator"
ENV_PRECISION = "env.precision"
ENV_THREADS = "env.threads"
ENV_DETERMINISTIC = "env.deterministic"
# The production version the gate compared the version with (NO_VERSION: none yet).
JUDGED_AGAINST = "judged_against"
NO_VERSION = "none"

# The gate's decision on the version.
GATE_DECISION = "gate_decision"
GATE_REPORT = "gate_report"
GATE_REPORT_URI = "gate_report_uri"
REJECTED = "rejected"  # = TRUE: the gate rejected it; it never takes an alias
FAILED_CHECK = "FAIL "  # how a failed check starts in the gate report

# The runtime that answers for the version (modelyard.inference.runtime: eager, onnx, onnx-int8,
# eager-fp16), chosen by the parity check for a CPU server and, checked on a GPU, a CUDA one. Also
# the key of the pyfunc model's `model_config` that names it (a load may override it).
RUNTIME = "runtime"
RUNTIME_CUDA = "runtime_cuda"

# Manual promotion: the reviewer's answer and the paused run that waits for it.
APPROVAL = "approval"  # waiting | approved | rejected | timed out
APPROVAL_WAITING = "waiting"
APPROVAL_FLOW_RUN = "approval_flow_run"
APPROVAL_BY = "approval_by"
APPROVAL_REASON = "approval_reason"

# The deploy check after a promotion to production.
DEPLOY = "deploy"
DEPLOY_FAILED = "failed"
DEPLOY_ERROR = "deploy_error"

# What `models show` lists of a version, in this order.
SHOWN_VERSION_TAGS = (
    DATASET_MD5,
    DATASET_PATH,
    GIT_COMMIT,
    PARAMS_HASH,
    VALIDATION,
    GATE_DECISION,
    RUNTIME,
    RUNTIME_CUDA,
    REJECTED,
    APPROVAL,
    APPROVAL_BY,
    APPROVAL_REASON,
    MLFLOW_RUN_ID,
    PREFECT_FLOW_RUN_ID,
)

# Run tags (the MLflow run of a retrain): searchable in the UI under the `modelyard.` prefix.
RUN_PREFIX = "modelyard."
RUN_DATASET_MD5 = RUN_PREFIX + DATASET_MD5
RUN_GIT_COMMIT = RUN_PREFIX + GIT_COMMIT
RUN_PARAMS_HASH = RUN_PREFIX + PARAMS_HASH
RUN_FLOW_RUN_ID = RUN_PREFIX + PREFECT_FLOW_RUN_ID
RUN_RESUMED_BY = RUN_PREFIX + "resumed_by_flow_run"
RUN_VALIDATION = RUN_PREFIX + VALIDATION
RUN_GATE = RUN_PREFIX + "gate"
RUN_DEVICE = RUN_PREFIX + "device"
RUN_PRECISION = RUN_PREFIX + "precision"
COMPUTE_DEVICE = RUN_PREFIX + "compute.device"
COMPUTE_DEVICE_NAME = RUN_PREFIX + "compute.device_name"
COMPUTE_ENERGY_SOURCE = RUN_PREFIX + "compute.energy_source"
COMPUTE_CURRENCY = RUN_PREFIX + "compute.currency"
# Links and provenance of the run, in ModelYard's own words (MLflow's standard names, such as
# `mlflow.note.content` for a description, come from `mlflow.utils.mlflow_tags` where written).
RUN_DATASET_VERSION = RUN_PREFIX + "dataset_version"  # NAME@V, or the file's path
RUN_PREFECT_URL = RUN_PREFIX + "prefect_flow_run_url"
RUN_DATA_DOCS = RUN_PREFIX + "data_docs"  # the artifact path of the Data Docs' index page
DATA_DOCS_INDEX = "validation/index.html"  # that path: the descriptions link to it
# Dataset inputs: one per split, named NAME@V/<split>; the whole file's DVC md5 as an input tag.
INPUT_CONTEXT_TRAIN, INPUT_CONTEXT_VAL, INPUT_CONTEXT_TEST = "train", "validation", "test"
INPUT_FILE_MD5 = RUN_PREFIX + "file_md5"
INPUT_ROWS = RUN_PREFIX + "rows"
# A registered model's tag listing every alias (`@production v3 · @staging v4`): MLflow's list
# of models shows one alias per version and "+1", hiding `production` behind `staging`.
MODEL_ALIASES = "aliases"
# Prefect: flow run tags (`model:NAME`, `dataset:NAME@V`, `trigger:KIND`) and artifact keys.
FLOW_TAG_MODEL, FLOW_TAG_DATASET, FLOW_TAG_TRIGGER = "model:", "dataset:", "trigger:"

# Metric groups: MLflow's run page draws one section per name up to its first "/", so the
# training curves, validation, test figures, slices, data and compute figures each get theirs.
TRAIN, VAL, TEST, SLICE, DATA, COMPUTE = "train/", "val/", "test/", "slice/", "data/", "compute/"
# The parity check of each exported runtime: runtime/<device>/<variant>/<figure>.
RUNTIME_GROUP = "runtime/"
RUNTIME_REPORT_FILE = "runtime/parity.json"  # the whole report, an artifact of the run
TRAIN_LOSS = TRAIN + "loss"  # per optimizer step
LEARNING_RATE = TRAIN + "learning_rate"  # per optimizer step
EPOCH_LOSS = TRAIN + "epoch_loss"  # per epoch (the mean of its steps' losses)
PRODUCTION_PREFIX = "production/"  # test/production/accuracy: the production model's figure
BASELINE_PREFIX = "baseline/"  # test/baseline/majority/accuracy
TRAIN_STEPS = TRAIN + "steps"
BEST_EPOCH = TRAIN + "best_epoch"
RESUMED_FROM_STEP = TRAIN + "resumed_from_step"
DP_EPSILON, DP_DELTA = TRAIN + "dp_epsilon", TRAIN + "dp_delta"
DP_NOISE_MULTIPLIER = TRAIN + "dp_noise_multiplier"
COMPUTE_TOTAL = COMPUTE + "total/"  # over every attempt of the run (retries, killed attempts)
# One JSON file per training attempt (its latest figures), read back for the run's totals.
COMPUTE_ATTEMPTS_DIR = "compute/attempts"
# Calibration of the candidate's confidence on its test split (`modelyard.evaluation.calibration`):
# ECE and friends as `calibration/<figure>`, the bins and the reliability diagram as artifacts.
CALIBRATION = "calibration/"
CALIBRATION_FILE = "calibration/reliability.json"
CALIBRATION_DIAGRAM = "calibration/reliability.svg"
# Rows of each class in each split (split → class → rows): what a card's data section shows.
CLASS_MIX_FILE = "data/class_mix.json"
# Artifacts of the run that a model card reads back (written by `modelyard.registry.tracking`
# and the explanation task).
GATE_DECISION_FILE = "gate/decision.json"
CANDIDATE_FILE = "evaluation/candidate.json"
PRODUCTION_FILE = "evaluation/production.json"
EXPLANATIONS_FILE = "explanations/report.json"
# The params the run trained with, resolved (its flat MLflow params are strings): what a rebuild
# (`modelyard models reproduce`) trains with again, after checking it hashes to `params_hash`.
PARAMS_FILE = "params.yaml"
# The version's model card (`modelyard.card`), regenerated at registration and on every alias
# move of the version.
CARD_MARKDOWN = "card/model_card.md"
CARD_HTML = "card/model_card.html"


def step_metrics(values: dict[str, float]) -> dict[str, float]:
    """A training step's figures (`train_loss`, `learning_rate`) under their MLflow names."""
    return {TRAIN + key.removeprefix("train_"): value for key, value in values.items()}


def epoch_metrics(values: dict[str, float]) -> dict[str, float]:
    """An epoch's record (`train_loss`, `val_*`) under its MLflow names; the epoch's mean loss
    is `train/epoch_loss`, apart from the per-step `train/loss`."""
    out: dict[str, float] = {}
    for key, value in values.items():
        if key == "epoch":
            continue
        if key.startswith("val_"):
            out[VAL + key.removeprefix("val_")] = value
        else:
            out[TRAIN + ("epoch_loss" if key == "train_loss" else key)] = value
    return out


def scored_metrics(headline: dict[str, float], who: str = "") -> dict[str, float]:
    """A model's headline figures on the test split: `test/<name>`, the length slices as
    `slice/<name>`; `who` (`production/`, `baseline/majority/`) for a model other than the
    candidate."""
    out: dict[str, float] = {}
    for key, value in headline.items():
        if key.startswith("slice_"):
            out[SLICE + who + key.removeprefix("slice_")] = value
        else:
            out[TEST + who + key] = value
    return out


def runtime_metrics(device: str, variant: str, figures: dict[str, float]) -> dict[str, float]:
    """One runtime's parity figures (agreement, deltas, texts/s, size) under their MLflow
    names: `runtime/cpu/onnx-int8/agreement`."""
    return {f"{RUNTIME_GROUP}{device}/{variant}/{key}": value for key, value in figures.items()}
