"""Does a shadow challenger add latency to answers? `modelyard serve` answering alone against the
same server with a shadow rollout open (the challenger scoring a copy of every request off the
request path), in one run: the same texts, closed loop at each concurrency level, rounds taken in
turns (alone, shadow, alone, ..., alone). Prints p50/p95 of the answers and their ratios (issue
21.4), what the shadow scored and dropped, and the noise: each shadow round against the alone
rounds either side of it, beside each alone round against the one before it (what the same
server measures against itself from one round to the next).

    .venv/bin/python bench/shadow_latency.py                      # tiny model, 10 s a level
    .venv/bin/python bench/shadow_latency.py --backbone minilm --levels 1,8 --seconds 15
    .venv/bin/python bench/shadow_latency.py --model-dir build/model
    taskset -c 2-5 .venv/bin/python bench/shadow_latency.py --server-cpus 0,1   # a 2-core server
    .venv/bin/python bench/shadow_latency.py --server-cpus 0 --shadow-cpus 1     # the shadow apart
    .venv/bin/python bench/shadow_latency.py --backbone minilm --levels 8 --arrivals 20,40

A closed loop sends the next request the moment an answer comes, so the server never pauses,
and the shadow (held stopped while the server answers) scores only what the short gaps allow:
under it the queue fills and copies are dropped, as designed. `--arrivals` adds open loops:
requests at random times (a seeded Poisson process) at the rates given, as independent users
send them, where the shadow scores in the traffic's pauses.

The model (a saved directory, or an untrained one of `--backbone`) is registered twice in a
scratch MODELYARD_HOME: version 1 in production, version 2 the challenger. Each phase is a fresh
server process; the shadow phase opens the rollout first and waits for /metadata to say the
challenger is loaded. The clients run in this process, the server in its own.

On a machine other work keeps busy, compare with `--omp-wait-policy PASSIVE`: by default
libgomp's idle threads spin for a while (waiting for the next parallel region) unless the process
runs more OpenMP threads than there are cores, and the shadow's own threads cross that line, so
"alone" then spins and "shadow" does not, and the shadow phase can look faster than the champion
alone. The same policy in both phases compares like with like.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import runtime_compare  # noqa: E402 - bench/ is not a package
import serving_vs_mlflow as serving  # noqa: E402

NAME = "bench-shadow"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="a saved model directory")
    parser.add_argument("--backbone", default="tiny", help="without --model-dir: tiny|minilm")
    parser.add_argument("--seconds", type=float, default=10.0, help="per level and round")
    parser.add_argument("--levels", default="1,8", help="closed loops: callers")
    parser.add_argument(
        "--arrivals", default="", help="open loops: requests a second, e.g. 20,40 (see above)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="alone/shadow pairs, in turns")
    parser.add_argument("--texts", type=Path, default=runtime_compare.SST2_DEV)
    parser.add_argument(
        "--omp-wait-policy",
        choices=["PASSIVE", "ACTIVE"],
        help="OMP_WAIT_POLICY of the server in both phases (see the module's docstring)",
    )
    parser.add_argument(
        "--server-cpus", help="pin the server to these cores (taskset -c), e.g. 0,1; clients not"
    )
    parser.add_argument(
        "--shadow-cpus", help="MODELYARD_SHADOW_CPUS: the shadow's scoring process on these cores"
    )
    return parser.parse_args()


def register(home: Path, model_dir: Path | None, backbone: str) -> None:
    """The model registered twice: version 1 in production, version 2 to be the challenger."""
    import pandas as pd

    from modelyard import tags
    from modelyard.config import ModelParams, Settings
    from modelyard.data.synthetic import LABELS, generate_reviews
    from modelyard.inference import TextClassifier
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.registry.pyfunc import predictions_frame
    from modelyard.training.model import build_model

    texts = [text for text, _ in generate_reviews()][:500]
    if model_dir is None:
        model, tokenizer = build_model(ModelParams(backbone=backbone), list(LABELS), texts)
        model_dir = TextClassifier(model, tokenizer, "cpu").save(home / "model")
    registry = MlflowRegistry.from_settings(Settings())
    outputs = predictions_frame(TextClassifier.load(model_dir, "cpu"), texts[:3])
    for _ in range(2):
        run_id = registry.start_run("bench", {})
        uri = registry.log_model(run_id, model_dir, pd.DataFrame({"text": texts[:3]}), outputs)
        registry.end_run(run_id)
        registry.register(uri, NAME, run_id, {})
    registry.set_alias(NAME, tags.PRODUCTION, "1")


def phase(env: dict[str, str], texts: list[str], args: Any, shadow: bool) -> list[Any]:
    """One server process, alone or with a shadow rollout open: a Level per concurrency, and
    the shadow's counters from /metrics."""
    import httpx

    from modelyard.config import Settings
    from modelyard.store.rollouts import RolloutState, RolloutStore

    store = RolloutStore.from_url(Settings().resolved_database_url())
    rollout = store.open(NAME, "1", "2", "shadow", 0.0, "bench") if shadow else None
    port = serving.free_port()
    params = Path(env["MODELYARD_HOME"]) / "params.yaml"
    params.write_text(f"model:\n  name: {NAME}\nserving:\n  poll_interval_s: 3600\n")
    command = [sys.executable, "-m", "modelyard", "serve", "--params", str(params)]
    if args.server_cpus:
        command = ["taskset", "-c", args.server_cpus, *command]
    url = f"http://127.0.0.1:{port}"
    target = serving.Target(port, "/predict", lambda text: {"text": text})
    try:
        with serving.server([*command, "--port", str(port)], env, f"{url}/ready"):
            if shadow:
                _wait_for_challenger(url)
                _wait_for_shadow(url, texts[0])
            levels = serving.run_levels(target, texts, _levels(args), args.seconds, _arrivals(args))
            metrics = httpx.get(f"{url}/metrics").text
    finally:
        if rollout is not None:
            store.close(rollout.id, RolloutState.ABORTED, "bench", "phase over")
    return [levels, _shadow_counts(metrics)]


def _wait_for_challenger(url: str) -> None:
    import httpx

    deadline = time.monotonic() + 300
    while not (httpx.get(f"{url}/metadata").json().get("rollout") or {}).get("challenger_loaded"):
        if time.monotonic() > deadline:
            raise TimeoutError("the challenger was not loaded within 300 s")
        time.sleep(0.2)


def _wait_for_shadow(url: str, text: str) -> None:
    """Until the shadow has scored one copy: its process loads the challenger (after the server
    has), and a phase measured before it is up would measure no shadow."""
    import httpx

    started = time.monotonic()
    httpx.post(f"{url}/predict", json={"text": text})
    while not _shadow_counts(httpx.get(f"{url}/metrics").text).get("scored"):
        if time.monotonic() > started + 300:
            raise TimeoutError("the shadow scored nothing within 300 s")
        time.sleep(0.2)
    print(f"the shadow scored its first copy {time.monotonic() - started:.1f} s after it")


def _shadow_counts(metrics: str) -> dict[str, float]:
    found = {}
    for line in metrics.splitlines():
        for name in ("scored", "dropped", "queue_depth"):
            if line.startswith(f"modelyard_shadow_{name} "):
                found[name] = float(line.rsplit(" ", 1)[1])
    return found


def _levels(args: Any) -> list[int]:
    return [int(level) for level in args.levels.split(",") if level]


def _arrivals(args: Any) -> list[float]:
    return [float(rate) for rate in args.arrivals.split(",") if rate]


def report(alone: list[list[Any]], shadowed: list[list[Any]], shadow_counts: list[Any]) -> None:
    """Latencies pooled over the rounds, per concurrency level, and their ratios."""
    import numpy as np

    print(f"\n{'load':>6s} | {'alone p50':>9s} {'p95 ms':>7s} {'req/s':>7s} | ", end="")
    print(f"{'shadow p50':>10s} {'p95 ms':>7s} {'req/s':>7s} | {'p50 x':>6s} {'p95 x':>6s}")
    for i, level in enumerate(alone[0]):
        a = [x for rounds in alone for x in rounds[i].latencies]
        b = [x for rounds in shadowed for x in rounds[i].latencies]
        pa, pb = (np.percentile(a, [50, 95]) * 1000, np.percentile(b, [50, 95]) * 1000)
        rate_a = sum(r[i].requests for r in alone) / sum(r[i].seconds for r in alone)
        rate_b = sum(r[i].requests for r in shadowed) / sum(r[i].seconds for r in shadowed)
        print(
            f"{level.name:>6s} | {pa[0]:9.1f} {pa[1]:7.1f} {rate_a:7.1f} | "
            f"{pb[0]:10.1f} {pb[1]:7.1f} {rate_b:7.1f} | "
            f"{pb[0] / pa[0]:5.2f}x {pb[1] / pa[1]:5.2f}x"
        )
    _noise(alone, shadowed)
    scored = sum(c.get("scored", 0) for c in shadow_counts)
    dropped = sum(c.get("dropped", 0) for c in shadow_counts)
    queued = sum(c.get("queue_depth", 0) for c in shadow_counts)
    print(
        f"shadow: {scored:.0f} texts scored by the challenger, {dropped:.0f} dropped (queue "
        f"full), {queued:.0f} still queued when the phases ended"
    )


def _noise(alone: list[list[Any]], shadowed: list[list[Any]]) -> None:
    """Per round: shadow round r against the geometric mean of alone rounds r and r+1 (either
    side of it, so a drift of the machine cancels), and alone round r+1 against alone round r."""
    import numpy as np

    print(
        f"\n{'load':>6s} {'q':>4s} | {'shadow / alone, per round':>34s} | {'95% CI':>13s} | "
        f"{'alone / alone':>24s}"
    )
    for i, level in enumerate(alone[0]):
        for q in (50, 95):
            a = [np.percentile(rounds[i].latencies, q) for rounds in alone]
            b = [np.percentile(rounds[i].latencies, q) for rounds in shadowed]
            ours = [b[r] / np.sqrt(a[r] * a[r + 1]) for r in range(len(b))]
            same = [a[r + 1] / a[r] for r in range(len(a) - 1)]
            print(
                f"{level.name:>6s} {f'p{q}':>4s} | {_ratios(ours):>34s} | "
                f"{_interval(ours):>13s} | {_ratios(same):>24s}"
            )
    print(
        "95% CI: of the per-round ratio's geometric mean (Student's t over the rounds' log "
        "ratios): an interval holding 1.00x means no added latency this run could detect"
    )


def _interval(ratios: list[float]) -> str:
    """The 95% confidence interval of the ratios' geometric mean, the rounds as the samples
    (the requests of one round share the machine's state of the moment, so they are not)."""
    import numpy as np
    from scipy.stats import t

    if len(ratios) < 2:
        return "n/a"
    logs = np.log(ratios)
    half = t.ppf(0.975, len(logs) - 1) * logs.std(ddof=1) / np.sqrt(len(logs))
    low, high = np.exp(logs.mean() - half), np.exp(logs.mean() + half)
    return f"{low:.2f}-{high:.2f}x"


def _ratios(ratios: list[float]) -> str:
    import numpy as np

    mean = float(np.exp(np.mean(np.log(ratios)))) if ratios else float("nan")
    return f"{mean:.2f}x ({min(ratios):.2f}-{max(ratios):.2f}x)"


def main() -> int:
    args = _arguments()
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        os.environ["MODELYARD_HOME"] = str(home)
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MODELYARD_DATABASE_URL"):
            os.environ.pop(name, None)
        register(home, args.model_dir, args.backbone)
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}
        if args.omp_wait_policy:
            env["OMP_WAIT_POLICY"] = args.omp_wait_policy
        if args.shadow_cpus:
            env["MODELYARD_SHADOW_CPUS"] = args.shadow_cpus
        texts = runtime_compare.timing_texts(args.texts, [])
        texts = texts or runtime_compare.default_split()[1]["text"].tolist()
        print(f"{len(texts)} texts, {args.seconds:g} s per level, {args.rounds} rounds in turns")
        alone, shadowed, counts = [], [], []
        for _ in range(args.rounds):
            alone.append(phase(env, texts, args, shadow=False)[0])
            levels, shadow_counts = phase(env, texts, args, shadow=True)
            shadowed.append(levels)
            counts.append(shadow_counts)
        alone.append(phase(env, texts, args, shadow=False)[0])  # every shadow round between two
        report(alone, shadowed, counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
