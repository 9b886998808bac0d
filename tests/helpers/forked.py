"""`modelyard` commands as real processes that skip the imports: forked from a server process
(multiprocessing's forkserver, one per xdist worker) that imported torch, transformers, MLflow,
Great Expectations and the rest once. A retrain process spends ~12 s of CPU importing them on
two cores, more than a tiny model's training; the tests that start many (racing retrains,
crashes, resumes, the loop's commands) pay it once.

What a test sees is a process of its own like `python -m modelyard …`: its own pid, environment,
working directory, exit code (a crash's `os._exit(9)` is 9, a kill is -9), output to a file.
Prefect is not preloaded: it reads its settings (PREFECT_API_URL) when imported, and each
process has its own. Tests of what a fresh interpreter prints or imports (warnings at import,
`--help` speed) keep `subprocess`.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.context import ForkServerContext
from pathlib import Path

# Imported once by the fork server; none of them imports prefect.
PRELOAD = (
    "torch",
    "transformers",
    "transformers.models.bert.modeling_bert",
    "mlflow",
    "mlflow.pyfunc",
    "mlflow.tracking",
    "great_expectations",
    "sklearn.metrics",
    "scipy.stats",
    "pandas",
    "pyarrow.parquet",
    "sqlalchemy",
)

_context: ForkServerContext | None = None


def _server() -> ForkServerContext:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(list(PRELOAD))
        atexit.register(_stop_server)
    return _context


def _stop_server() -> None:
    """Stop the fork server and reap it when the test process ends: no process outlives the
    run (and its CPU is counted with the run's)."""
    from multiprocessing import forkserver

    forkserver._forkserver._stop()


def _main(
    argv: list[str], env: dict[str, str], cwd: str, logs: tuple[str, str], code: str, session: bool
) -> None:
    """The child: the caller's environment and directory, stdout and stderr to `logs` (the same
    file or two), then the CLI (or `code`, a script that patches something and runs the CLI
    itself)."""
    if session:
        os.setsid()  # a group of its own, which a test kills whole (as a power cut)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in zip((1, 2), logs, strict=True):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), fd)
    sys.argv = ["modelyard", *argv]
    try:
        if code:
            exec(compile(code, "<modelyard process>", "exec"), {"__name__": "__main__"})
        else:
            from modelyard.cli import main

            main()
    finally:
        # A forked child ends with os._exit: the handlers a process runs on its way out
        # (Prefect's log and event flushes among them) run here.
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()


@dataclass
class Forked:
    """A running command, as much of `subprocess.Popen` as the tests use."""

    process: multiprocessing.process.BaseProcess
    log: Path

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def poll(self) -> int | None:
        return self.process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired(f"modelyard (pid {self.pid})", timeout or 0)
        return self.process.exitcode

    def kill(self) -> None:
        self.process.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start(
    argv: list[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    code: str = "",
    new_session: bool = False,
    stderr: Path | None = None,
) -> Forked:
    """`modelyard ARGV` (or `code`) in a new process forked from the preloaded server; its
    output to `log` (stderr too, unless `stderr` names a file for it)."""
    logs = (str(log), str(stderr or log))
    process = _server().Process(
        target=_main,
        args=(list(argv), dict(env), str(cwd), logs, code, new_session),
        daemon=False,
    )
    process.start()
    return Forked(process, log)


def run(
    argv: list[str], *, env: Mapping[str, str], cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`modelyard ARGV` to its end, as `subprocess.run(..., capture_output=True, text=True)`
    would."""
    with tempfile.TemporaryDirectory(prefix="modelyard-forked-") as scratch:
        where = Path(cwd) if cwd is not None else Path.cwd()
        err = Path(scratch) / "stderr.log"
        process = start(argv, env=env, cwd=where, log=Path(scratch) / "stdout.log", stderr=err)
        try:
            code = process.wait(timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.process.join()
        errors = err.read_text(errors="replace") if err.exists() else ""
        return subprocess.CompletedProcess(["modelyard", *argv], code, process.output(), errors)
