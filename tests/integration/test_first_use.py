"""Several processes starting together on fresh embedded stores (what two `modelyard retrain`
started at once do): MLflow's SQLite store and the platform database are created and migrated
once, and every process gets the same experiment."""

from __future__ import annotations

import subprocess
import sys


def test_processes_starting_together_on_fresh_stores(tmp_path):
    # Every process imports first, then says so with a file and waits for all four: then they
    # open the stores together.
    ready = tmp_path / "ready"
    ready.mkdir()
    code = (
        "import os, pathlib, sys, time\n"
        "from modelyard.registry.mlflow_registry import MlflowRegistry\n"
        "from modelyard.store.audit import AuditLog\n"
        f"ready = pathlib.Path({str(ready)!r})\n"
        "(ready / str(os.getpid())).touch()\n"
        "deadline = time.monotonic() + 300\n"
        "while len(list(ready.iterdir())) < 4:\n"
        "    assert time.monotonic() < deadline, 'the other processes never started'\n"
        "    time.sleep(0.01)\n"
        f"registry = MlflowRegistry('sqlite:///{tmp_path}/mlflow.db', 'same', None)\n"
        f"AuditLog.from_url('sqlite:///{tmp_path}/modelyard.db').history('m')\n"
        "print(registry.experiment_id)\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for _ in range(4)
    ]
    results = [process.communicate(timeout=300) for process in processes]
    for process, (_, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err[-3000:]
    assert len({out.strip() for out, _ in results}) == 1
