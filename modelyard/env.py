"""Process defaults for the tools ModelYard drives: offline, no telemetry, quiet progress bars.

Called by the CLI and the tests at start-up (never at import time). `setdefault` throughout: a
value the user exported wins.
"""

from __future__ import annotations

import os

DEFAULTS = {
    # Nothing phones home: the machines this runs on may have no internet at all.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "False",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # The ephemeral Prefect API migrates a fresh SQLite database on its first start; on two busy
    # cores that can take longer than Prefect's default wait.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_defaults() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
