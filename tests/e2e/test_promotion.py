"""Promotion under the conditions that break naive pipelines, each retrain a real `modelyard
retrain` process against a real (temporary) Prefect API, a shared MLflow store and audit database:

- two retrains of different quality racing for `production`;
- a retrain killed between moving `production` and writing its audit row, then re-run;
- `promotion.mode: manual`: approved, rejected, and never answered (timeout).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import forked
from tests.helpers.lineage import CLEAN_COMMIT
from tests.helpers.paths import REPO

pytestmark = pytest.mark.slow

# The CLI, with one function replaced before it runs: how the tests reach into a real process
# at an exact point (an ordered turn at the promotion lock, a crash after the registry moved).
# The processes and the test tell each other where they are through files, waited for with a
# deadline: nothing is left to who happens to be faster.
_PATCHED_CLI = """
import os, sys, time, pathlib
sys.path.insert(0, {repo!r})
def _wait(check, what, timeout_s=300.0):
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"waited {{timeout_s:.0f}} s: {{what}}")
        time.sleep(0.05)
{patch}
from modelyard.cli import main
sys.argv = ["modelyard", *sys.argv[1:]]
main()
"""

IN_TURN = """
import contextlib
from modelyard.store.audit import AuditLog
_original = AuditLog.promotion_lock
@contextlib.contextmanager
def _in_turn(self, model, timeout_s=600.0):
    # Both retrains have compared against the same production before either may promote; the
    # one whose TURN is "first" takes the lock, the other asks for it once it is taken.
    barrier = pathlib.Path(os.environ["BARRIER"])
    (barrier / f"compared-{os.getpid()}").touch()
    _wait(lambda: len(list(barrier.glob("compared-*"))) >= 2, "the other retrain to compare")
    if os.environ["TURN"] == "second":
        _wait((barrier / "locked").exists, "the first retrain to take the lock")
    with _original(self, model, timeout_s):
        (barrier / "locked").touch()
        yield
AuditLog.promotion_lock = _in_turn
"""

PAUSE_AFTER_THE_ANSWER = """
import prefect.flow_runs
_pause = prefect.flow_runs.pause_flow_run
def _pause_after_the_answer(*args, **kwargs):
    # The version is tagged "waiting": the reviewer answers now, finding the run still running,
    # and only then does it pause.
    _wait(pathlib.Path(os.environ["ANSWERED"]).exists, "the reviewer's first answer")
    return _pause(*args, **kwargs)
prefect.flow_runs.pause_flow_run = _pause_after_the_answer
"""

CRASH_AFTER_PRODUCTION_MOVES = """
from modelyard.registry.mlflow_registry import MlflowRegistry
_original = MlflowRegistry.set_alias
def _set_alias_then_die(self, name, alias, version):
    _original(self, name, alias, version)
    if alias == "production":
        os._exit(9)  # as a power cut: the audit row of this move is never committed
MlflowRegistry.set_alias = _set_alias_then_die
"""

# The lineage key names a clean commit (tests.helpers.lineage), the work tree dirty or not.
PIN_CLEAN_COMMIT = f"""
import tasks.lineage
tasks.lineage.code_commit = lambda fallback: {CLEAN_COMMIT!r}
"""


def _params(tmp_path: Path, tiny_params, data: Path, name: str, **overrides) -> Path:
    params = tiny_params.updated(
        {
            "model.name": name,
            "data.path": str(data),
            # Both qualities below pass the absolute floors, and the
            # 2-epoch model's recall of `positive` (it predicts it often)
            # does not veto the better one: the race is decided by the
            # overall comparison alone, whichever wins the lock.
            "gate.min_accuracy": 0.34,
            "gate.min_macro_f1": 0.2,
            "gate.min_class_recall": 0.0,
            "gate.max_slice_regression": 0.5,
            **overrides,
        }
    )
    path = tmp_path / f"params-{name}-{len(list(tmp_path.glob('params-*')))}.yaml"
    path.write_text(yaml.safe_dump(params.model_dump(mode="json")))
    return path


def _retrain(params: Path, home: Path, api: str, patch: str = "", **env: str) -> forked.Forked:
    """A `modelyard retrain` process (forked with its imports done: tests.helpers.forked),
    `patch` run in it first."""
    code = _PATCHED_CLI.format(repo=str(REPO), patch=patch) if patch else ""
    # Output to a file, not a pipe: a pipe nobody reads while the test waits on another process
    # fills up and blocks its writer (here: before the barrier the other one waits at).
    return forked.start(
        ["retrain", "--params", str(params)],
        env={
            **os.environ,
            "PREFECT_API_URL": api,
            "MODELYARD_HOME": str(home),
            "COLUMNS": "200",
            **env,
        },
        cwd=home.parent,
        log=params.with_suffix(f".{time.monotonic_ns()}.log"),
        code=code,
    )


def _finish(process: forked.Forked, timeout: float = 600) -> tuple[int, str]:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return process.returncode, " ".join(process.output().split())


def _store(home: Path):
    from modelyard.registry.mlflow_registry import open_client
    from modelyard.store.audit import AuditLog

    # Opened as the product opens it: a retrain starting meanwhile migrates the same fresh store.
    uri = f"sqlite:///{home.resolve()}/mlflow.db"
    return (
        open_client(uri),
        AuditLog.from_url(f"sqlite:///{home.resolve()}/modelyard.db"),
    )


def _assert_trail_matches_registry(client, audit, name: str) -> None:
    """Every alias's moves chain (each starts where the previous ended) and end where the
    registry points: no lost and no duplicated rows."""
    aliases = client.get_registered_model(name).aliases
    for alias in ("staging", "production"):
        moves = audit.history(name, alias)
        chain = [None] + [m.to_version for m in moves]
        assert [m.from_version for m in moves] == chain[:-1], f"{alias} trail broken: {moves}"
        assert (str(aliases[alias]) if alias in aliases else None) == chain[-1]


@pytest.mark.parametrize("first", ["worse", "better"])
def test_concurrent_retrains_leave_the_better_model_in_production(
    first, prefect_api, tmp_path, tiny_params, small_reviews
):
    """Both compare against the same (empty) production, then race for the lock; `first` gets
    it (the other asks for it once it is taken). Either way the better model ends in production
    and the one that promoted second had to compare again."""
    home, barrier = tmp_path / "home", tmp_path / "barrier"
    barrier.mkdir()
    name = "race"
    # The tiny BERT after 2 epochs: accuracy ~0.57, macro-F1 ~0.46; after 5: ~0.73 / ~0.74.
    worse = _params(tmp_path, tiny_params, small_reviews, name, **{"train.epochs": 2})
    better = _params(tmp_path, tiny_params, small_reviews, name)
    runs = [
        _retrain(
            path,
            home,
            prefect_api,
            IN_TURN,
            BARRIER=str(barrier),
            TURN="first" if which == first else "second",
        )
        for which, path in (("worse", worse), ("better", better))
    ]
    (worse_code, worse_out), (better_code, better_out) = [_finish(run) for run in runs]
    assert worse_code == 0, worse_out[-3000:]
    assert better_code == 0, better_out[-3000:]

    client, audit = _store(home)
    versions = {str(v.version): v for v in client.search_model_versions(f"name='{name}'")}
    assert len(versions) == 2
    by_epochs = {v.tags["params_hash"]: number for number, v in versions.items()}
    from modelyard.config import load_params

    better_version = by_epochs[load_params(better).digest()]
    worse_version = by_epochs[load_params(worse).digest()]
    production = client.get_model_version_by_alias(name, "production")
    assert str(production.version) == better_version
    _assert_trail_matches_registry(client, audit, name)

    moves = audit.history(name, "production")
    if first == "better":
        assert [m.to_version for m in moves] == [better_version]
        assert "production moved to v" + better_version in worse_out
        assert versions[worse_version].tags["rejected"] == "true"
        assert versions[worse_version].aliases == []
    else:
        assert [m.to_version for m in moves] == [worse_version, better_version]
        assert f"re-checked against version {worse_version}" in moves[1].reason
        assert "production moved to v" + worse_version in better_out
    audit.engine.dispose()


def test_killed_promotion_rerun_leaves_one_version_and_one_row(
    prefect_api, tmp_path, tiny_params, small_reviews
):
    home, name = tmp_path / "home", "crash"
    # Two epochs: any first model that passes the floors shows it (see `_params`).
    params = _params(tmp_path, tiny_params, small_reviews, name, **{"train.epochs": 2})
    crash = PIN_CLEAN_COMMIT + CRASH_AFTER_PRODUCTION_MOVES
    code, out = _finish(_retrain(params, home, prefect_api, crash))
    assert code == 9, out[-3000:]
    client, audit = _store(home)
    assert str(client.get_model_version_by_alias(name, "production").version) == "1"
    assert [m.alias for m in audit.history(name)] == ["staging"]  # production's row was lost

    # Version 1 has this run's lineage key, but its retrain never finished: resumed, not repeated.
    code, out = _finish(_retrain(params, home, prefect_api, PIN_CLEAN_COMMIT))
    assert code == 0, out[-3000:]
    assert "version 1 is from a retrain that did not finish (it resumes)" in out
    assert "version 1 was already registered from run" in out
    assert len(client.search_model_versions(f"name='{name}'")) == 1
    experiment = client.get_experiment_by_name("modelyard").experiment_id
    (run,) = client.search_runs([experiment])
    assert run.info.status == "FINISHED"
    moves = audit.history(name)
    assert [(m.alias, m.from_version, m.to_version) for m in moves] == [
        ("staging", None, "1"),
        ("production", None, "1"),
    ]
    assert "recorded on retry" in moves[1].reason
    _assert_trail_matches_registry(client, audit, name)

    code, out = _finish(_retrain(params, home, prefect_api, PIN_CLEAN_COMMIT))  # all done already
    assert code == 0, out[-3000:]
    assert f"{name}: identical to version 1 (registered " in out  # nothing trained again
    assert len(client.search_runs([experiment])) == 1
    assert len(audit.history(name)) == 2
    audit.engine.dispose()


def _wait_for_tag(
    client,
    name: str,
    version: str,
    key: str,
    value: str,
    process: forked.Forked,
    timeout: float = 600,
) -> None:
    from mlflow.exceptions import MlflowException

    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, process.output()[-3000:]
        assert time.monotonic() < deadline, f"{name} v{version} never got {key}={value}"
        try:
            if client.get_model_version(name, version).tags.get(key) == value:
                return
        except MlflowException:
            pass
        time.sleep(0.5)


def _manual_retrains(
    api: str, tmp_path: Path, tiny_params, data: Path
) -> dict[str, tuple[Path, forked.Forked]]:
    """Three manual-mode retrains, each in a home of its own: one to approve, one to reject,
    one left to time out."""
    cases = {}
    for case, timeout_s in (("approved", 600), ("rejected", 600), ("timeout", 5)):
        home = tmp_path / case
        home.mkdir()
        params = _params(
            home,
            tiny_params,
            data,
            "manual",
            **{
                "promotion.mode": "manual",
                "train.epochs": 2,
                "promotion.approval_timeout_s": timeout_s,
            },
        )
        # The rejected one pauses only once its answer was first given: the answer arrives
        # before the pause does (and is given again until the pause is there to take it).
        patch = PAUSE_AFTER_THE_ANSWER if case == "rejected" else ""
        cases[case] = (
            home,
            _retrain(params, home, api, patch=patch, ANSWERED=str(home / "answered")),
        )
    return cases


def _outcomes(cases: dict[str, tuple[Path, forked.Forked]]) -> dict[str, tuple]:
    """Each case's (production version, approval tag, output, audit log), once it ended."""
    outcomes = {}
    for case, (home, process) in cases.items():
        code, out = _finish(process)
        assert code == 0, out[-3000:]
        client, audit = _store(home)
        aliases = client.get_registered_model("manual").aliases
        tags = client.get_model_version("manual", "1").tags
        outcomes[case] = (str(aliases.get("production")), tags["approval"], out, audit)
    return outcomes


def _assert_approved(production: str, status: str, out: str, audit) -> None:
    assert (production, status) == ("1", "approved")
    assert "approval approved by" in out and "looks good on the slices" in out
    moves = audit.history("manual")
    assert [(m.alias, m.to_version) for m in moves] == [("staging", "1"), ("production", "1")]
    assert moves[1].actor.startswith("user:") and " via flow-run:" in moves[1].actor
    assert moves[1].reason == "approved: looks good on the slices"


def test_manual_promotion_waits_for_a_reviewer(
    prefect_api, tmp_path, tiny_params, small_reviews, monkeypatch
):
    """Three retrains paused after `staging`: one approved and one rejected from the CLI (answered
    before its pause is in place), one never answered. Only the approved one reaches
    production."""
    import prefect.flow_runs
    from typer.testing import CliRunner

    from modelyard.cli import app

    cases = _manual_retrains(prefect_api, tmp_path, tiny_params, small_reviews)
    runner = CliRunner()
    resume = prefect.flow_runs.resume_flow_run

    def resume_then_say_so(*args, **kwargs):
        try:
            return resume(*args, **kwargs)
        finally:
            (cases["rejected"][0] / "answered").touch()

    def answer(case: str, verb: str, *args: str) -> str:
        home, process = cases[case]
        client, _ = _store(home)
        _wait_for_tag(client, "manual", "1", "approval", "waiting", process)
        assert str(client.get_model_version_by_alias("manual", "staging").version) == "1"
        with pytest.raises(Exception, match="production"):
            client.get_model_version_by_alias("manual", "production")  # not before approval
        monkeypatch.setenv("MODELYARD_HOME", str(home))
        if case == "rejected":
            monkeypatch.setattr(prefect.flow_runs, "resume_flow_run", resume_then_say_so)
        result = runner.invoke(app, ["models", verb, "manual", "1", *args])
        monkeypatch.setattr(prefect.flow_runs, "resume_flow_run", resume)
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    assert "flow run" in answer("approved", "approve", "--reason", "looks good on the slices")
    assert "production does not move" in answer("rejected", "reject", "--reason", "too risky")

    outcomes = _outcomes(cases)
    _assert_approved(*outcomes["approved"])
    for case, status in (("rejected", "rejected"), ("timeout", "timed out")):
        production, found, _, audit = outcomes[case]
        assert (production, found) == ("None", status), case
        assert [m.alias for m in audit.history("manual")] == ["staging"], case
    assert "approval timed out by nobody: no answer within 5 s" in outcomes["timeout"][2]

    # Nothing is waiting any more: a late answer is refused with the reason.
    monkeypatch.setenv("MODELYARD_HOME", str(cases["timeout"][0]))
    late = runner.invoke(app, ["models", "approve", "manual", "1"])
    assert late.exit_code == 1 and "not waiting for approval (approval: timed out)" in " ".join(
        late.output.split()
    )
    for *_, audit in outcomes.values():
        audit.engine.dispose()


def test_manual_mode_needs_a_reachable_prefect_api(tmp_path, tiny_params, small_reviews):
    params = _params(tmp_path, tiny_params, small_reviews, "manual", **{"promotion.mode": "manual"})
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "modelyard", "retrain", "--params", str(params)],
        env={**env, "MODELYARD_HOME": str(tmp_path / "h")},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2 and "set PREFECT_API_URL" in out
    assert not (tmp_path / "h" / "mlflow.db").exists()
