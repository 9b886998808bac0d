"""Production mode on one machine: a Prefect server and an MLflow tracking server on PostgreSQL,
a Prefect worker for a `process` work pool, and the model server — `make up` / `make down`.

`up` starts a detached supervisor (`python -m modelyard.stack supervise ROOT`) that starts the
services, restarts one that dies (with backoff, up to a limit), sends their output to
`ROOT/logs/<service>.log`, and on SIGTERM stops exactly what it started. `down` signals the
supervisor recorded in `ROOT/supervisor.pid`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

SERVICES = ("prefect", "mlflow", "worker", "model")


@dataclass(frozen=True)
class StackConfig:
    root: Path
    # The PostgreSQL server (trust or password in the URL); one database per service.
    postgres: str = "postgresql://postgres@127.0.0.1:5432"
    prefix: str = "modelyard"
    prefect_port: int = 4200
    mlflow_port: int = 5000
    model_port: int = 8000
    work_pool: str = "cpu"
    params: Path = Path("params.yaml")
    # Where the MLflow server keeps artifacts: a local folder under root by default, or an
    # S3-compatible URI (s3://bucket/prefix; credentials and MLFLOW_S3_ENDPOINT_URL from the
    # environment, as MLflow reads them).
    artifacts: str | None = None
    services: tuple[str, ...] = SERVICES
    extra_env: dict[str, str] = field(default_factory=dict)

    def database(self, service: str, driver: str = "psycopg") -> str:
        name = {"prefect": f"{self.prefix}_prefect", "mlflow": f"{self.prefix}_mlflow",
                "platform": self.prefix}[service]
        parts = urlsplit(self.postgres)
        return f"postgresql+{driver}://{parts.netloc}/{name}"

    @property
    def urls(self) -> dict[str, str]:
        return {"prefect": f"http://127.0.0.1:{self.prefect_port}",
                "mlflow": f"http://127.0.0.1:{self.mlflow_port}",
                "model": f"http://127.0.0.1:{self.model_port}"}

    def client_env(self) -> dict[str, str]:
        """What a client (the CLI, a worker, a flow run) needs to use this stack."""
        return {"PREFECT_API_URL": f"{self.urls['prefect']}/api",
                "MLFLOW_TRACKING_URI": self.urls["mlflow"],
                "MODELYARD_DATABASE_URL": self.database("platform"),
                "MODELYARD_HOME": str(self.root / "home"), **self.extra_env}


def ensure_databases(config: StackConfig) -> None:
    import psycopg

    parts = urlsplit(config.postgres)
    with psycopg.connect(f"postgresql://{parts.netloc}/{parts.path.lstrip('/') or 'postgres'}",
                         autocommit=True, connect_timeout=5) as admin:
        existing = {row[0] for row in admin.execute("SELECT datname FROM pg_database")}
        for service in ("prefect", "mlflow", "platform"):
            name = config.database(service).rsplit("/", 1)[1]
            if name not in existing:
                admin.execute(f'CREATE DATABASE "{name}"')


def commands(config: StackConfig) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """Per service: argv, environment additions, and the URL that says it is up."""
    bin_dir = Path(sys.executable).parent
    client = config.client_env()
    prefect_home = str(config.root / "prefect-home")
    return {
        "prefect": ([str(bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1",
                     "--port", str(config.prefect_port)],
                    {"PREFECT_API_DATABASE_CONNECTION_URL": config.database("prefect", "asyncpg"),
                     "PREFECT_HOME": prefect_home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
                    f"{config.urls['prefect']}/api/health"),
        "mlflow": ([str(bin_dir / "mlflow"), "server", "--host", "127.0.0.1", "--port",
                    str(config.mlflow_port), "--backend-store-uri", config.database("mlflow"),
                    "--artifacts-destination",
                    config.artifacts or (config.root / "artifacts").as_uri(),
                    "--workers", "1"],
                   {}, f"{config.urls['mlflow']}/health"),
        "worker": ([str(bin_dir / "prefect"), "worker", "start", "--pool", config.work_pool,
                    "--type", "process"], {**client, "PREFECT_HOME": prefect_home}, ""),
        "model": ([sys.executable, "-m", "modelyard", "serve", "--params", str(config.params),
                   "--port", str(config.model_port)], client,
                  f"{config.urls['model']}/health"),
    }


def _wait_http(url: str, timeout_s: float) -> bool:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def supervise(config: StackConfig, max_restarts: int = 5) -> None:
    """Start the services in order (each waits for the one before to answer), keep them
    running, stop them all on SIGTERM/SIGINT."""
    from modelyard.env import apply_defaults

    apply_defaults()
    logs = config.root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    running: dict[str, subprocess.Popen] = {}
    restarts = dict.fromkeys(config.services, 0)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    specs = commands(config)

    def start(service: str) -> None:
        argv, extra, _ = specs[service]
        with (logs / f"{service}.log").open("a") as log:
            running[service] = subprocess.Popen(
                argv, env={**os.environ, **extra}, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=config.root, start_new_session=True)
        _write_state(config, running)

    for service in config.services:
        if stopping:
            break
        start(service)
        url = specs[service][2]
        if url and not _wait_http(url, 180):
            print(f"{service} did not answer at {url} within 180 s; see {logs}/{service}.log",
                  file=sys.stderr)
    while not stopping:
        for service, process in list(running.items()):
            if process.poll() is not None and not stopping:
                if restarts[service] >= max_restarts:
                    continue
                restarts[service] += 1
                time.sleep(min(2 ** restarts[service], 30))
                start(service)
        time.sleep(0.5)
    for process in running.values():
        _terminate(process.pid)
    (config.root / "state.json").unlink(missing_ok=True)


def _terminate(pid: int, grace_s: float = 15) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _write_state(config: StackConfig, running: dict[str, subprocess.Popen]) -> None:
    state = {"services": {name: p.pid for name, p in running.items()}, "urls": config.urls}
    partial = config.root / "state.json.partial"
    partial.write_text(json.dumps(state, indent=1))
    partial.replace(config.root / "state.json")


def up(config: StackConfig, timeout_s: float = 300) -> dict[str, str]:
    """Start the supervisor (detached) and wait until every service with a URL answers."""
    config.root.mkdir(parents=True, exist_ok=True)
    pid_file = config.root / "supervisor.pid"
    if pid_file.is_file() and _alive(int(pid_file.read_text())):
        raise RuntimeError(f"a stack is already running from {config.root} (pid "
                           f"{pid_file.read_text().strip()}): `make down` first")
    ensure_databases(config)
    (config.root / "config.json").write_text(json.dumps(
        {**asdict(config), "root": str(config.root), "params": str(config.params)}, indent=1))
    with (config.root / "supervisor.log").open("a") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "modelyard.stack", "supervise", str(config.root)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=config.root)
    pid_file.write_text(str(supervisor.pid))
    specs = commands(config)
    for service in config.services:
        url = specs[service][2]
        if url and not _wait_http(url, timeout_s):
            down(config.root)
            raise RuntimeError(f"{service} did not come up at {url}; see "
                               f"{config.root}/logs/{service}.log")
    return config.urls


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def down(root: Path, timeout_s: float = 60) -> bool:
    """Stop the supervisor started from `root` and with it every service; False if none."""
    pid_file = root / "supervisor.pid"
    if not pid_file.is_file():
        return False
    pid = int(pid_file.read_text())
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)  # reap it when it is our own child
            except ChildProcessError:
                pass
            time.sleep(0.2)
        if _alive(pid):
            _terminate(pid, 0)
    # Anything the supervisor could not stop (it was killed itself) goes now.
    state = root / "state.json"
    if state.is_file():
        for service_pid in json.loads(state.read_text())["services"].values():
            _terminate(service_pid)
        state.unlink()
    pid_file.unlink()
    return True


def _load(root: Path) -> StackConfig:
    raw = json.loads((root / "config.json").read_text())
    return StackConfig(**{**raw, "root": Path(raw["root"]), "params": Path(raw["params"]),
                          "services": tuple(raw["services"])})


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "supervise":
        supervise(_load(Path(sys.argv[2])))
    else:
        sys.exit("usage: python -m modelyard.stack supervise ROOT")
