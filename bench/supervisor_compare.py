"""Our stack supervisor (`modelyard.orchestration.stack.supervise`) against supervisord, on the
same fake services, in one run: what each costs, how fast each notices a crash and restarts the
service, how fast each stops, and whether supervisord's `environment=` can carry the stack's
real environment. The figures behind docs/operations/process-supervision.md.

    .venv/bin/python bench/supervisor_compare.py [--crashes 3] [--repeats 3] [--supervisord PATH]

supervisord is not a dependency of ModelYard: install it anywhere (`python -m venv /tmp/sv &&
/tmp/sv/bin/pip install supervisor==4.3.0`) and pass `--supervisord /tmp/sv/bin/supervisord`,
or have it on PATH.

The services are two tiny Python processes: `crasher` runs 1.5 s (longer than supervisord's
`startsecs=1`, so it counts as started) and exits 1; `steady` sleeps until stopped. Each writes
`time.monotonic()` (one clock for every process on the machine) when it starts and exits, so
a restart's delay is read from the services' own logs, not guessed from the supervisor's.
Our supervisor runs its real loop: only `commands()` is swapped for the fake services, and it
imports what the real one has loaded (httpx for readiness, modelyard.config for the served
model's name), so its memory is the real one's.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CRASH_AFTER_S = 1.5
CHILD = """\
import os, sys, time
log, life = sys.argv[1], float(sys.argv[2])
with open(log, "a") as out:
    out.write(f"start {time.monotonic()} {os.getpid()}\\n")
if len(sys.argv) > 3:  # the environment check: what arrived, as a Python literal
    keys = sys.argv[3].split(",")
    with open(log + ".env.partial", "w") as out:
        out.write(repr({key: os.environ.get(key) for key in keys}))
    os.replace(log + ".env.partial", log + ".env")
if life < 0:
    time.sleep(1e9)
time.sleep(life)
with open(log, "a") as out:
    out.write(f"exit {time.monotonic()}\\n")
sys.exit(1)
"""


@dataclass
class Figures:
    name: str
    first_start_s: float  # launch of the supervisor → the first service started
    restart_delays_s: list[float]  # crash → the service started again, per crash
    rss_kib: int  # the supervisor process's resident memory
    extra_processes: int  # processes besides the supervisor and the services
    stop_s: float  # SIGTERM → supervisor and every service gone (nothing pending)
    stop_after_crash_s: float  # the same, sent right after a crash (a restart pending); median


# ---- the fake services and the log they leave ------------------------------------------------


def service_argv(tmp: Path, name: str, life_s: float, env_keys: str = "") -> list[str]:
    child = tmp / "child.py"
    if not child.exists():
        child.write_text(CHILD)
    argv = [sys.executable, "-I", "-S", str(child), str(tmp / f"{name}.events"), str(life_s)]
    return [*argv, env_keys] if env_keys else argv


def events(tmp: Path, name: str) -> list[tuple[str, float]]:
    path = tmp / f"{name}.events"
    if not path.exists():
        return []
    return [
        (line.split()[0], float(line.split()[1]))
        for line in path.read_text().splitlines()
        if line.count(" ") >= 1
    ]


def started_pids(tmp: Path, name: str) -> list[int]:
    path = tmp / f"{name}.events"
    return (
        [
            int(line.split()[2])
            for line in path.read_text().splitlines()
            if line.startswith("start ") and len(line.split()) == 3
        ]
        if path.exists()
        else []
    )


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll with a deadline: the bench never assumes how long a supervisor takes."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(0.01)


def restart_delays(tmp: Path) -> list[float]:
    marks = events(tmp, "crasher")
    return [
        later - earlier
        for (kind, earlier), (next_kind, later) in pairwise(marks)
        if kind == "exit" and next_kind == "start"
    ]


# ---- process facts from /proc --------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    # A zombie is gone for our purpose: it runs nothing and holds no port.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop_and_time(supervisor: subprocess.Popen, tmp: Path) -> float:
    """SIGTERM the supervisor; seconds until it and every service it started are gone."""
    sent = time.monotonic()
    supervisor.send_signal(signal.SIGTERM)
    supervisor.wait(timeout=120)
    # Read after it ended: a supervisor may start a service after the signal.
    services = started_pids(tmp, "crasher") + started_pids(tmp, "steady")
    wait_for(lambda: not any(alive(pid) for pid in services), 60, "the services to end")
    return time.monotonic() - sent


# ---- the two supervisors -----------------------------------------------------------------


def launch_ours(tmp: Path, max_restarts: int) -> subprocess.Popen:
    specs = {
        "steady": service_argv(tmp, "steady", -1),
        "crasher": service_argv(tmp, "crasher", CRASH_AFTER_S),
    }
    return subprocess.Popen(
        [sys.executable, __file__, "--run-ours", str(tmp), json.dumps(specs), str(max_restarts)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_ours(root: Path, specs: dict[str, list[str]], max_restarts: int) -> None:
    """The real `supervise` loop with `commands()` swapped for the fake services."""
    import httpx  # noqa: F401  the real supervisor loads these (readiness checks, params)

    import modelyard.config  # noqa: F401
    from modelyard.orchestration import stack

    stack.commands = lambda config: {name: (argv, {}, "") for name, argv in specs.items()}
    stack.supervise(
        stack.StackConfig(root=root / "stack", services=tuple(specs)), max_restarts=max_restarts
    )


def supervisord_conf(tmp: Path, programs: dict[str, tuple[list[str], dict[str, str]]]) -> Path:
    """A minimal supervisord.conf as `make up` would need one: its control socket (for
    `supervisorctl`, i.e. `make down` and status), a log per program, process groups stopped
    as a whole (Prefect and MLflow servers spawn children), unlimited restarts."""
    lines = [
        "[supervisord]",
        f"logfile={tmp}/supervisord.log",
        f"pidfile={tmp}/supervisord.pid",
        f"childlogdir={tmp}",
        "nodaemon=true",
        "",
        "[unix_http_server]",
        f"file={tmp}/supervisor.sock",
        "chmod=0700",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{tmp}/supervisor.sock",
        "",
    ]
    for name, (argv, env) in programs.items():
        lines += [
            f"[program:{name}]",
            "command=" + " ".join(argv).replace("%", "%%"),
            "autorestart=true",
            "startsecs=1",
            "startretries=5",
            "stopasgroup=true",
            "killasgroup=true",
            "stopwaitsecs=15",
            "redirect_stderr=true",
            f"stdout_logfile={tmp}/{name}.log",
        ]
        if env:
            lines.append(
                "environment="
                + ",".join(f"{key}={supervisord_value(value)}" for key, value in env.items())
            )
        lines.append("")
    conf = tmp / "supervisord.conf"
    conf.write_text("\n".join(lines))
    conf.chmod(0o600)  # it would hold the admin token
    return conf


def supervisord_value(value: str) -> str:
    """A value as supervisord's `environment=` reads it: its lexer (shlex, non-POSIX) knows no
    escapes, so a value is wrapped in the quote it does not contain, and `%` is doubled for
    its config parser; a value holding both quotes has no spelling at all."""
    value = value.replace("%", "%%")
    return f"'{value}'" if "'" not in value else f'"{value}"'


def launch_supervisord(binary: str, tmp: Path) -> subprocess.Popen:
    conf = supervisord_conf(
        tmp,
        {
            "steady": (service_argv(tmp, "steady", -1), {}),
            "crasher": (service_argv(tmp, "crasher", CRASH_AFTER_S), {}),
        },
    )
    return subprocess.Popen(
        [binary, "-c", str(conf)], cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def measure(
    name: str, launch: Callable[[Path], subprocess.Popen], crashes: int, repeats: int
) -> Figures:
    """One supervisor: `crashes` crashes then a stop with nothing pending; then, `repeats`
    times, one crash and a stop sent the moment the service exits (a restart pending)."""
    with tempfile.TemporaryDirectory(prefix=f"sv-{name}-") as folder:
        tmp = Path(folder)
        launched = time.monotonic()
        supervisor = launch(tmp)
        wait_for(lambda: events(tmp, "steady") and events(tmp, "crasher"), 60, "first start")
        first = min(events(tmp, "steady")[0][1], events(tmp, "crasher")[0][1]) - launched
        # Ours waits 2, 4, 8 … s (capped at 30) before restart n: allow for all of them.
        budget = sum(min(2**n, 30) for n in range(1, crashes + 1)) + 30 * crashes
        wait_for(lambda: len(started_pids(tmp, "crasher")) > crashes, budget, f"{crashes} restarts")
        wait_for(lambda: len(started_pids(tmp, "steady")) >= 1, 10, "steady")
        helpers = [
            pid
            for pid in children_of(supervisor.pid)
            if pid not in started_pids(tmp, "crasher") + started_pids(tmp, "steady")
        ]
        memory = rss_kib(supervisor.pid)
        delays = restart_delays(tmp)[:crashes]
        stop = stop_and_time(supervisor, tmp)
    after_crash = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix=f"sv-{name}-") as folder:
            tmp = Path(folder)
            supervisor = launch(tmp)
            wait_for(
                lambda tmp=tmp: any(kind == "exit" for kind, _ in events(tmp, "crasher")),
                60,
                "the first crash",
            )
            after_crash.append(stop_and_time(supervisor, tmp))
    return Figures(name, first, delays, memory, len(helpers), stop, statistics.median(after_crash))


# ---- can supervisord's config carry the stack's environment? ----------------------------------


def stack_environment() -> dict[str, str]:
    """What `commands()` gives the worker of a real stack, with a PostgreSQL password a user may
    well have (both quotes, a comma, a percent)."""
    from modelyard.orchestration.stack import ADMIN_TOKEN_ENV, StackConfig

    config = StackConfig(
        root=Path("/srv/team's checkout/.modelyard/stack"),
        params=REPO / "params.yaml",
        admin_token="tok-%_3xY",
        postgres="postgresql://ml:p'a\"ss,w%rd@db:5432",
    )
    return {**config.client_env(), ADMIN_TOKEN_ENV: config.admin_token or ""}


def environment_roundtrip(binary: str) -> tuple[list[str], list[str]]:
    """(keys that arrived intact, keys that did not or could not be written)."""
    env = stack_environment()
    spellable = {key: value for key, value in env.items() if not ("'" in value and '"' in value)}
    with tempfile.TemporaryDirectory(prefix="sv-env-") as folder:
        tmp = Path(folder)
        conf = supervisord_conf(
            tmp, {"steady": (service_argv(tmp, "steady", -1, ",".join(spellable)), spellable)}
        )
        supervisor = subprocess.Popen(
            [binary, "-c", str(conf)], cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            seen_file = tmp / "steady.events.env"
            wait_for(
                lambda: seen_file.exists() or supervisor.poll() is not None,
                30,
                "the environment check",
            )
            seen = ast.literal_eval(seen_file.read_text()) if seen_file.exists() else {}
        finally:
            supervisor.terminate()
            supervisor.wait(timeout=60)
    intact = [key for key in env if seen.get(key) == env[key]]
    return intact, [key for key in env if key not in intact]


# ---- report -----------------------------------------------------------------------------------


def report(rows: list[Figures], intact: list[str], lost: list[str]) -> None:
    print(f"{'':34}" + "".join(f"{row.name:>16}" for row in rows))
    lines = [
        ("first service started (s)", lambda r: f"{r.first_start_s:.2f}"),
        ("resident memory (MiB)", lambda r: f"{r.rss_kib / 1024:.1f}"),
        ("processes besides services", lambda r: f"1 + {r.extra_processes}"),
        ("stop, nothing pending (s)", lambda r: f"{r.stop_s:.2f}"),
        ("stop, a restart pending (s)", lambda r: f"{r.stop_after_crash_s:.2f}"),
    ]
    crashes = max(len(row.restart_delays_s) for row in rows)
    lines += [
        (
            f"crash {n + 1} -> restarted (s)",
            lambda r, n=n: f"{r.restart_delays_s[n]:.2f}" if n < len(r.restart_delays_s) else "-",
        )
        for n in range(crashes)
    ]
    for label, cell in lines:
        print(f"{label:34}" + "".join(f"{cell(row):>16}" for row in rows))
    print(
        f"supervisord environment=: {len(intact)} of {len(intact) + len(lost)} of the stack's "
        f"variables arrive intact; not: {', '.join(lost) or 'none'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crashes", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="stops after a crash, per side")
    parser.add_argument(
        "--supervisord",
        default=shutil.which("supervisord") or str(Path(sys.executable).parent / "supervisord"),
    )
    parser.add_argument("--run-ours", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_ours:
        root, specs, max_restarts = args.run_ours
        run_ours(Path(root), json.loads(specs), int(max_restarts))
        return
    if not Path(args.supervisord).is_file():
        sys.exit(f"no supervisord at {args.supervisord}: see this script's docstring")
    rows = [
        measure(
            "modelyard", lambda tmp: launch_ours(tmp, args.crashes + 2), args.crashes, args.repeats
        ),
        measure(
            "supervisord",
            lambda tmp: launch_supervisord(args.supervisord, tmp),
            args.crashes,
            args.repeats,
        ),
    ]
    report(rows, *environment_roundtrip(args.supervisord))


if __name__ == "__main__":
    main()
