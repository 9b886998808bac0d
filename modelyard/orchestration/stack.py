"""Production mode on one machine: a Prefect server and an MLflow tracking server on PostgreSQL,
a Prefect worker for a `process` work pool, and the model server — `make up` / `make down`.

`up` starts a detached supervisor (`python -m modelyard.orchestration.stack supervise ROOT`) that
starts the
services, restarts one that dies (with backoff, up to a limit), sends their output to
`ROOT/logs/<service>.log`, and on SIGTERM stops exactly what it started. `down` signals the
supervisor recorded in `ROOT/supervisor.pid`.

A stack's databases belong to its project (the checkout whose flows it runs): they are named
after the project's path, and each records its owner in PostgreSQL (`COMMENT ON DATABASE`), so a
second checkout on the same server gets databases of its own, and one told to use another's
names (`prefix`) is refused with the owner named. Its model server is one of the servers the
retrain flow's deploy step checks (the worker's `MODELYARD_DEPLOY_SERVERS`), with an admin token
both share, so a retrain returns once that server serves the new version.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

SERVICES = ("prefect", "mlflow", "worker", "model")
# What a stack's database says about itself (COMMENT ON DATABASE): this, then the owner's path.
OWNER_MARK = "modelyard stack of "
ADMIN_TOKEN_ENV = "MODELYARD_ADMIN_TOKEN"
DEPLOY_SERVERS_ENV = "MODELYARD_DEPLOY_SERVERS"
PREFIX_ENV = "MODELYARD_STACK_PREFIX"
PORT_ENV = "MODELYARD_STACK_{}_PORT"
HOST = "127.0.0.1"


class StackError(RuntimeError):
    """A refusal, said in one line to the person at the terminal."""


def default_prefix(owner: str) -> str:
    """`modelyard_<folder>_<10 hex of the path's sha256>`: readable in a database listing, and
    another checkout (another path) never gets the same names."""
    folder = re.sub(r"[^a-z0-9]+", "_", Path(owner).name.lower()).strip("_")[:20]
    digest = hashlib.sha256(owner.encode()).hexdigest()[:10]
    return "_".join(part for part in ("modelyard", folder, digest) if part)


@dataclass(frozen=True)
class StackConfig:
    root: Path
    # The PostgreSQL server (trust or password in the URL); one database per service.
    postgres: str = "postgresql://postgres@127.0.0.1:5432"
    # The databases' names start with this; None: `default_prefix` of the owner.
    prefix: str | None = None
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
    # The checkout whose flows the stack runs, and so the owner of its databases; None: root.
    project: Path | None = None
    # Shared by the model server and the worker's flow runs (reload after a promotion); `up`
    # makes one when unset. Never printed: it is kept in ROOT/config.json, readable by its owner.
    admin_token: str | None = None

    @property
    def owner(self) -> str:
        return str((self.project or self.root).resolve())

    def database_names(self) -> dict[str, str]:
        prefix = self.prefix or default_prefix(self.owner)
        return {"prefect": f"{prefix}_prefect", "mlflow": f"{prefix}_mlflow", "platform": prefix}

    def database(self, service: str, driver: str = "psycopg") -> str:
        parts = urlsplit(self.postgres)
        return f"postgresql+{driver}://{parts.netloc}/{self.database_names()[service]}"

    @property
    def ports(self) -> dict[str, int]:
        return {"prefect": self.prefect_port, "mlflow": self.mlflow_port, "model": self.model_port}

    @property
    def urls(self) -> dict[str, str]:
        return {service: f"http://{HOST}:{port}" for service, port in self.ports.items()}

    def client_env(self) -> dict[str, str]:
        """What a client (the CLI, a worker, a flow run) needs to use this stack; the deploy
        step of a retrain started with it checks the stack's model server too."""
        env = {
            "PREFECT_API_URL": f"{self.urls['prefect']}/api",
            "MLFLOW_TRACKING_URI": self.urls["mlflow"],
            "MODELYARD_DATABASE_URL": self.database("platform"),
            "MODELYARD_HOME": str(self.root / "home"),
        }
        if "model" in self.services:
            env[DEPLOY_SERVERS_ENV] = json.dumps({served_model(self.params): [self.urls["model"]]})
        return {**env, **self.extra_env}


def served_model(params: Path) -> str:
    """The model the stack's server follows (`model.name` of the params it serves)."""
    from modelyard.config import load_params

    return load_params(params).model.name


def export_lines(env: dict[str, str]) -> list[str]:
    """`export KEY=VALUE` lines a shell can eval."""
    return [f"export {key}={shlex.quote(value)}" for key, value in env.items()]


def ownership_conflicts(
    wanted: list[str], existing: dict[str, str | None], owner: str
) -> list[str]:
    """Why each database of `wanted` that already exists is not `owner`'s to use (`existing`:
    name → its comment); empty when every one is new or already `owner`'s."""
    problems = []
    for name in wanted:
        if name not in existing:
            continue
        comment = existing[name] or ""
        if not comment.startswith(OWNER_MARK):
            problems.append(
                f"database {name} exists but records no owner (made by hand, or by a "
                f"stack before stacks recorded theirs); if it is this project's, "
                f'claim it: COMMENT ON DATABASE "{name}" IS '
                f"'{OWNER_MARK}{owner}'"
            )
        elif comment != OWNER_MARK + owner:
            problems.append(
                f"database {name} belongs to the stack of {comment.removeprefix(OWNER_MARK)}"
            )
    return problems


def ensure_databases(config: StackConfig) -> list[str]:
    """Create the stack's databases that are missing, each marked as its owner's; refuse, before
    creating any, when one of them is another's. The names created."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(config.postgres)
    wanted = list(config.database_names().values())
    created = []
    with psycopg.connect(
        f"postgresql://{parts.netloc}/{parts.path.lstrip('/') or 'postgres'}",
        autocommit=True,
        connect_timeout=5,
    ) as admin:
        existing: dict[str, str | None] = dict(
            admin.execute(
                "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
            ).fetchall()
        )
        problems = ownership_conflicts(wanted, existing, config.owner)
        if problems:
            raise StackError(
                f"this stack ({config.owner}) cannot use the databases on "
                f"{parts.hostname}:{parts.port or 5432}: {'; '.join(problems)}. "
                f"Each project gets its own names unless {PREFIX_ENV} says "
                "otherwise: unset it or choose another"
            )
        for name in wanted:
            if name not in existing:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                admin.execute(
                    sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                        sql.Identifier(name), sql.Literal(OWNER_MARK + config.owner)
                    )
                )
                created.append(name)
    return created


def busy_ports(config: StackConfig) -> list[str]:
    """The stack's ports something already listens on: a service started there would not bind,
    and waiting for its URL would find the other process (another checkout's stack)."""
    busy = []
    for service, port in config.ports.items():
        if service not in config.services:
            continue
        try:
            socket.create_connection((HOST, port), timeout=1).close()
        except OSError:
            continue
        busy.append(f"{service} port {port} ({PORT_ENV.format(service.upper())})")
    return busy


Command = tuple[list[str], dict[str, str], str]


def commands(config: StackConfig) -> dict[str, Command]:
    """Per service: argv, environment additions, and the URL that says it is up."""
    return {
        "prefect": _prefect_server(config),
        "mlflow": _mlflow_server(config),
        "worker": _worker(config),
        "model": _model_server(config),
    }


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _token(config: StackConfig) -> dict[str, str]:
    # The worker's flow runs ask the model server to reload with it after a promotion.
    return {ADMIN_TOKEN_ENV: config.admin_token} if config.admin_token else {}


def _prefect_server(config: StackConfig) -> Command:
    argv = [_bin("prefect"), "server", "start", "--host", "127.0.0.1"]
    return (
        [*argv, "--port", str(config.prefect_port)],
        {
            "PREFECT_API_DATABASE_CONNECTION_URL": config.database("prefect", "asyncpg"),
            "PREFECT_HOME": str(config.root / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # The UI calls the API it was served from, on whatever port (else :4200).
            "PREFECT_UI_API_URL": f"{config.urls['prefect']}/api",
        },
        f"{config.urls['prefect']}/api/health",
    )


def _mlflow_server(config: StackConfig) -> Command:
    argv = [_bin("mlflow"), "server", "--host", "127.0.0.1", "--workers", "1"]
    artifacts = config.artifacts or (config.root / "artifacts").as_uri()
    return (
        [
            *argv,
            *("--port", str(config.mlflow_port)),
            *("--backend-store-uri", config.database("mlflow")),
            *("--artifacts-destination", artifacts),
        ],
        # MLflow's job runner (GenAI judges, trace rollups) starts two more processes that
        # ModelYard never uses.
        {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        f"{config.urls['mlflow']}/health",
    )


def _worker(config: StackConfig) -> Command:
    argv = [_bin("prefect"), "worker", "start", "--type", "process"]
    environment = {"PREFECT_HOME": str(config.root / "prefect-home")}
    return (
        [*argv, "--pool", config.work_pool],
        {**config.client_env(), **environment, **_token(config)},
        "",
    )


def _model_server(config: StackConfig) -> Command:
    argv = [sys.executable, "-m", "modelyard", "serve", "--params", str(config.params)]
    # A team's server: /predict, /explain and /feedback need API keys (`modelyard keys create`);
    # the deploy step passes with the stack's admin token.
    return (
        [*argv, "--port", str(config.model_port), "--require-keys"],
        {**config.client_env(), **_token(config)},
        f"{config.urls['model']}/health",
    )


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


def _launch(command: Command, log_file: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """One service in a session of its own (so that it can be stopped with its children)."""
    argv, extra, _ = command
    with log_file.open("a") as log:
        return subprocess.Popen(
            argv,
            env={**os.environ, **extra},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
        )


def supervise(config: StackConfig, max_restarts: int = 5) -> None:
    """Start the services in order (each waits for the one before to answer), keep them
    running, stop them all on SIGTERM/SIGINT."""
    from modelyard.env import apply_defaults

    apply_defaults()
    logs = config.root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    running: dict[str, subprocess.Popen[bytes]] = {}
    restarts = dict.fromkeys(config.services, 0)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    specs = commands(config)

    def start(service: str) -> None:
        running[service] = _launch(specs[service], logs / f"{service}.log", config.root)
        _write_state(config, running)

    for service in config.services:
        if stopping:
            break
        start(service)
        url = specs[service][2]
        if url and not _wait_http(url, 180):
            print(
                f"{service} did not answer at {url} within 180 s; see {logs}/{service}.log",
                file=sys.stderr,
            )
    while not stopping:
        for service, process in list(running.items()):
            if process.poll() is not None and not stopping:
                if restarts[service] >= max_restarts:
                    continue
                restarts[service] += 1
                # The backoff ends early on a stop: `down` is not kept waiting, and nothing is
                # started after it.
                resume = time.monotonic() + min(2 ** restarts[service], 30)
                while not stopping and time.monotonic() < resume:
                    time.sleep(0.2)
                if not stopping:
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
        # Reaped when it is our own child: unreaped, its zombie keeps the group alive and every
        # stop would wait out the whole grace.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _write_state(config: StackConfig, running: dict[str, subprocess.Popen[bytes]]) -> None:
    state = {"services": {name: p.pid for name, p in running.items()}, "urls": config.urls}
    partial = config.root / "state.json.partial"
    partial.write_text(json.dumps(state, indent=1))
    partial.replace(config.root / "state.json")


def up(config: StackConfig, timeout_s: float = 300) -> dict[str, str]:
    """Start the supervisor (detached) and wait until every service with a URL answers."""
    config.root.mkdir(parents=True, exist_ok=True)
    pid = supervisor_pid(config.root)
    if pid is not None:
        raise StackError(
            f"a stack is already running from {config.root} (pid {pid}): `make down` first"
        )
    busy = busy_ports(config)
    if busy:
        raise StackError(
            f"already in use on {HOST}: {', '.join(busy)} — another stack? "
            "(`modelyard stack env` in its project prints its URLs); pick free "
            "ports with those variables"
        )
    ensure_databases(config)
    config = replace(
        config,
        admin_token=config.admin_token
        or os.environ.get(ADMIN_TOKEN_ENV)
        or secrets.token_urlsafe(32),
    )
    _write_private(config.root / "config.json", json.dumps(_dump(config), indent=1))
    pid_file = config.root / "supervisor.pid"
    with (config.root / "supervisor.log").open("a") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "modelyard.orchestration.stack", "supervise", str(config.root)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=config.root,
        )
    pid_file.write_text(str(supervisor.pid))
    specs = commands(config)
    for service in config.services:
        url = specs[service][2]
        if url and not _wait_http(url, timeout_s):
            down(config.root)
            raise RuntimeError(
                f"{service} did not come up at {url}; see {config.root}/logs/{service}.log"
            )
    return config.urls


def supervisor_pid(root: Path) -> int | None:
    """The pid of the supervisor started from `root`, when it is alive."""
    pid_file = root / "supervisor.pid"
    if not pid_file.is_file():
        return None
    pid = int(pid_file.read_text())
    return pid if _alive(pid) else None


def running(root: Path) -> StackConfig | None:
    """The configuration of the stack running from `root`; None when none is."""
    if supervisor_pid(root) is None or not (root / "config.json").is_file():
        return None
    return _load(root)


def _write_private(path: Path, text: str) -> None:
    """Written whole, readable by its owner only (it holds the admin token)."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(text)
    partial.replace(path)


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


def _dump(config: StackConfig) -> dict[str, object]:
    return {
        **asdict(config),
        "root": str(config.root),
        "params": str(config.params),
        "project": str(config.project) if config.project else None,
        # What it was named, for a person reading the file.
        "databases": config.database_names(),
        "owner": config.owner,
    }


def _load(root: Path) -> StackConfig:
    raw = json.loads((root / "config.json").read_text())
    raw.pop("databases", None)
    raw.pop("owner", None)
    return StackConfig(
        **{
            **raw,
            "root": Path(raw["root"]),
            "params": Path(raw["params"]),
            "project": Path(raw["project"]) if raw.get("project") else None,
            "services": tuple(raw["services"]),
        }
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "supervise":
        supervise(_load(Path(sys.argv[2])))
    else:
        sys.exit("usage: python -m modelyard.orchestration.stack supervise ROOT")
