"""Several processes starting together on fresh embedded stores (what two `modelyard retrain`
started at once do): MLflow's SQLite store and the platform database are created and migrated
once, and every process gets the same experiment."""

from __future__ import annotations

import subprocess
import sys
import time


def test_processes_starting_together_on_fresh_stores(tmp_path):
    go = time.time() + 4  # every process imports first, then all start at this instant
    code = (
        "import time, sys\n"
        "from modelyard.registry.mlflow_registry import MlflowRegistry\n"
        "from modelyard.store.audit import AuditLog\n"
        f"time.sleep(max(0, {go} - time.time()))\n"
        f"registry = MlflowRegistry('sqlite:///{tmp_path}/mlflow.db', 'same', None)\n"
        f"AuditLog.from_url('sqlite:///{tmp_path}/modelyard.db').history('m')\n"
        "print(registry.experiment_id)\n"
    )
    processes = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=tmp_path)
                 for _ in range(4)]
    results = [process.communicate(timeout=300) for process in processes]
    for process, (_, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err[-3000:]
    assert len({out.strip() for out, _ in results}) == 1
