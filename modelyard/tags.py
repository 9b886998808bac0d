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

# The gate's decision on the version.
GATE_DECISION = "gate_decision"
GATE_REPORT = "gate_report"
GATE_REPORT_URI = "gate_report_uri"
REJECTED = "rejected"  # = TRUE: the gate rejected it; it never takes an alias
FAILED_CHECK = "FAIL "  # how a failed check starts in the gate report

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
