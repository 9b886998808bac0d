"""`modelyard …`: only typer at import time, so `--help` answers at once; each command imports
what it needs when it runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from modelyard.config import Params
    from modelyard.promotion import AliasDecision
    from modelyard.registry.mlflow_registry import MlflowRegistry

app = typer.Typer(help="ModelYard: version, validate, train, gate, register and promote models.",
                  no_args_is_help=True, add_completion=False)
data_app = typer.Typer(help="Datasets: the default dataset, DVC versions.", no_args_is_help=True)
app.add_typer(data_app, name="data")
models_app = typer.Typer(help="The model registry: versions, aliases, their history, rollback.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")
stack_app = typer.Typer(help="Production mode on one machine: Prefect and MLflow servers on "
                         "PostgreSQL, a worker, the model server.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
stage_app = typer.Typer(help="The DVC pipeline's stages (run by `dvc repro`, see dvc.yaml).",
                        no_args_is_help=True)
app.add_typer(stage_app, name="stage")


def _parse_overrides(pairs: list[str]) -> dict[str, Any]:
    import yaml

    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--set expects KEY=VALUE, got {pair!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


@app.command()
def retrain(
    params: Annotated[Path, typer.Option(help="The params file.")] = Path("params.yaml"),
    data: Annotated[str | None, typer.Option(
        help="A dataset file, or a version NAME@VERSION (reviews@2, reviews@latest, reviews@<md5 "
             "prefix>, reviews@<git rev>). Default: data.path.")] = None,
    data_repo: Annotated[str | None, typer.Option(
        help="Read NAME@VERSION from this repository (path or git URL) instead of this "
             "project.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a param: train.epochs=1")] = [],
    remote: Annotated[bool, typer.Option("--remote", help="Run the `retrain/retrain` deployment "
                                                        "on its work pool and follow it.")] = False,
) -> None:
    """Run the retrain flow: validate, train, evaluate vs production, gate, register, promote."""
    from rich.console import Console
    from rich.markup import escape

    from modelyard.config import ConfigError, load_params
    from modelyard.env import apply_defaults

    apply_defaults()
    console = Console(stderr=True)
    overrides = _parse_overrides(set_)
    try:
        loaded = load_params(params)
        if overrides:
            loaded = loaded.updated(overrides)
        _preflight(loaded)
    except (ConfigError, ValueError, KeyError, FileNotFoundError) as error:
        console.print(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(2) from None
    # A bad file or an unknown version is refused in a second, before Prefect starts a server.
    _check_training_input(loaded, data, data_repo, remote)

    if remote:
        _retrain_remote(params, data, data_repo, overrides, console)
        return
    from prefect.exceptions import FailedRun

    from flows.retrain import retrain as retrain_flow

    try:
        summary = retrain_flow(params_path=str(params), data_path=data,
                               overrides=overrides or None, data_repo=data_repo)
    except FailedRun as failed:  # refused inputs, or a failed deployment; the message says which
        console.print(f"[red]error:[/] {escape(str(failed))}")
        raise typer.Exit(1) from None
    from modelyard.report import print_summary

    print_summary(summary)


def _retrain_remote(params: Path, data: str | None, data_repo: str | None,
                    overrides: dict[str, Any], console: Any) -> None:
    """Trigger the deployment, print the run's logs as they come, exit with its outcome."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.deployments import run_deployment
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        _fail("--remote needs a Prefect server with the deployment: set PREFECT_API_URL")
    run = run_deployment("retrain/retrain", timeout=0, parameters={
        "params_path": str(params.resolve()), "data_path": data, "data_repo": data_repo,
        "overrides": overrides or None})
    console.print(f"flow run {run.id} ({run.name}) on the retrain deployment")
    # Logs reach the server in batches, from several threads, not in timestamp order: paging by
    # offset would skip a line inserted before the offset, so lines are recognised by id. After
    # the run ends, a few more polls collect the batches still in flight.
    seen: set[Any] = set()
    only_this_run = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id]))
    quiet_after_end = 0
    with get_client(sync_client=True) as client:
        while quiet_after_end < 3:
            state = client.read_flow_run(run.id).state
            fresh, offset = [], 0
            while True:
                page = client.read_logs(log_filter=only_this_run, limit=200, offset=offset)
                fresh += [entry for entry in page if entry.id not in seen]
                if len(page) < 200:
                    break
                offset += len(page)
            for entry in sorted(fresh, key=lambda entry: entry.timestamp):
                typer.echo(entry.message)
                seen.add(entry.id)
            if state is not None and state.is_final():
                quiet_after_end = 0 if fresh else quiet_after_end + 1
            time.sleep(1 if state is not None and state.is_final() else 2)
    if not state.is_completed():
        _fail(f"flow run {run.id} ended {state.type.value}: {state.message}")


def _check_training_input(params: Params, data: str | None, data_repo: str | None,
                          remote: bool) -> None:
    """What the retrain flow would refuse first, checked here without Prefect or a model: the
    dataset version exists, the file is there and readable in its format, both columns are
    present, every text is text and every row has a label. Exit 1 naming the rows otherwise.

    With --remote, a plain file that is not on this machine is left to the worker, which may
    see files this one does not; versions (NAME@VERSION) are checked here as well."""
    from modelyard.adapters.catalog import CatalogError, DataRef
    from modelyard.adapters.workspace_catalog import check_reference

    specs = [data or str(params.data.path)]
    if params.data.test_path is not None:
        specs.append(str(params.data.test_path))
    try:  # an unknown version of this project, without pandas or DVC: the quickest refusal
        for spec in specs:
            if data_repo is None and DataRef.looks_like(spec):
                check_reference(spec, Path.cwd())
    except CatalogError as error:
        _fail(f"{error}\nNothing was trained, registered or promoted.")

    from modelyard.config import Settings
    from modelyard.adapters import datasets as sources
    from modelyard.data.dataset import DatasetError, read_frame
    from modelyard.data.input_check import InputError, check_training_frame

    cache = Settings().dataset_cache()
    for spec in specs:
        versioned = data_repo is not None or DataRef.looks_like(spec)
        if remote and not versioned and not Path(spec).exists():
            continue
        source = None
        try:
            source = sources.resolve(spec, data_repo, None, cache)
            check_training_frame(read_frame(source.path), params.data, source.label, source.path)
        except (CatalogError, DatasetError, InputError, OSError) as error:
            message = str(error)
            if source is not None and source.ref is not None:  # the version, not the cache file
                message = message.replace(str(source.path), source.label)
            _fail(f"{message}\nNothing was trained, registered or promoted.")


_NEEDS_A_GPU = ("bf16", "fp16")


def _preflight(params: Params) -> None:
    """What params.yaml alone cannot know: that the backbone exists on this machine and the
    precision suits its device, that a manual approval can reach this run. Checked before any
    data is read or anything is trained. Torch and Prefect are imported only where a check
    needs them: a refusal of bad data right after this must stay quick."""
    from modelyard.training.model import backbone_path

    if params.model.backbone != "tiny":
        backbone_path(params.model.backbone)
    if params.train.precision in _NEEDS_A_GPU:  # auto and fp32 suit every device
        from modelyard.training.loop import resolve_precision
        from modelyard.inference import pick_device

        resolve_precision(pick_device(), params.train.precision)
    if params.promotion.mode != "manual":
        return
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        raise ValueError("promotion.mode is manual: the run pauses for a reviewer, who needs a "
                         "Prefect server to reach it; start one (`prefect server start`) and set "
                         "PREFECT_API_URL, or use --set promotion.mode=auto")


@data_app.command("prepare")
def data_prepare(
    params: Annotated[Path, typer.Option(help="The params file.")] = Path("params.yaml"),
) -> None:
    """Make the default dataset present, in DVC's cache and in the DVC remote, and put the
    dataset versions this checkout pins into the workspace (from DVC's cache or remote)."""
    from modelyard.config import load_params
    from modelyard.adapters.default_dataset import materialise_dataset_versions, prepare_default_dataset
    from modelyard.env import apply_defaults

    apply_defaults()
    path = load_params(params).data.path
    how = prepare_default_dataset(Path.cwd(), path)
    typer.echo(f"{path}: {how}; tracked by DVC and pushed to the default remote")
    versions = materialise_dataset_versions(Path.cwd())
    if versions.restored:
        typer.echo(f"dataset versions restored from DVC: {', '.join(versions.restored)}")
    if versions.unavailable:
        typer.echo(f"dataset versions in neither DVC's cache nor its remote (`dvc status` lists "
                   f"them as deleted until `dvc pull` can reach a remote that has them): "
                   f"{', '.join(versions.unavailable)}", err=True)


@data_app.command("add")
def data_add(
    path: Annotated[Path, typer.Argument(help="CSV, TSV, Parquet or JSON Lines file.")],
    name: Annotated[str | None, typer.Option(help="Dataset name (default: the file's stem).")]
    = None,
    params: Annotated[Path, typer.Option(help="The params file (columns, labels, thresholds).")]
    = Path("params.yaml"),
    push: Annotated[bool, typer.Option(help="Push to the default DVC remote.")] = True,
) -> None:
    """Validate a file and add it as the next version of a dataset (DVC-tracked, pushed)."""
    from modelyard.env import apply_defaults

    apply_defaults()
    loaded = _load_params_or_exit(params)
    from modelyard.adapters import datasets as sources

    with _data_errors():
        added = sources.add(sources.project_root(), path, name or path.stem, loaded, push=push)
    entry = added.entry
    if not added.created:
        typer.echo(f"{path} is already {entry.ref} (md5 {entry.md5}): nothing to add")
        return
    same = f"; the same bytes as {', '.join(added.same_bytes)}" if added.same_bytes else ""
    typer.echo(f"added {entry.ref}: {entry.path}, md5 {entry.md5}, {entry.rows} rows, classes "
               f"{entry.classes}{same}")
    if added.report is not None:
        typer.echo(f"validation: {added.report.summary()}")
    typer.echo(f"pushed to the DVC remote: {'yes' if push else 'no (--no-push)'}. Pin it in git: "
               f"git add {entry.path}.dvc {Path(entry.path).parent}/.gitignore && git commit")
    _announce(entry)


def _announce(entry: Any) -> None:
    """Send the dataset event, then say which retrain it started (or why none)."""
    from modelyard.orchestration.events import DATASET_ADDED, emit_dataset_added

    if not emit_dataset_added(entry.ref, entry.md5):
        typer.echo(f"no event sent: no Prefect server (PREFECT_API_URL) to announce {entry.ref} "
                   f"to; retrain on it with: modelyard retrain --data {entry.ref}")
        return
    typer.echo(f"event {DATASET_ADDED} sent for {entry.ref}")
    _report_triggered_run(entry.ref)


def _report_triggered_run(ref: str) -> None:
    from modelyard.orchestration.events import RETRAIN_DEPLOYMENT, triggered_retrain

    found = triggered_retrain(ref)
    if found is None:
        typer.echo(f"no run of the {RETRAIN_DEPLOYMENT} deployment on {ref} appeared within 30 s: "
                   "is the deployment there with its trigger (`modelyard deploy`, or `make up`)?")
    else:
        run, state = found
        typer.echo(f"started {RETRAIN_DEPLOYMENT} run {run} on {ref} ({state}; queued behind a "
                   "running retrain if there is one, never cancelled)")


@data_app.command("from-feedback")
def data_from_feedback(
    base: Annotated[str, typer.Option(help="The training data: a file or NAME@VERSION.")],
    name: Annotated[str, typer.Option(help="Dataset name of the new version.")],
    params: Annotated[Path, typer.Option(help="The params file (model.name, columns).")] = Path(
        "params.yaml"),
    since: Annotated[str | None, typer.Option(help="Only feedback from this ISO time on.")] = None,
    push: Annotated[bool, typer.Option(help="Push to the default DVC remote.")] = True,
) -> None:
    """Training data + the model's labelled feedback → the next dataset version (validated,
    de-duplicated, the feedback's label winning), announced to the retrain trigger."""
    from datetime import UTC, datetime

    from modelyard.config import Settings
    from modelyard.adapters import datasets as sources
    from modelyard.adapters.feedback import add_feedback_version
    from modelyard.env import apply_defaults

    apply_defaults()
    loaded = _load_params_or_exit(params)
    when = None
    if since is not None:
        try:
            when = datetime.fromisoformat(since)
        except ValueError:
            _fail(f"--since {since!r} is not an ISO time")
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    settings = Settings()
    with _data_errors():
        added, feedback = add_feedback_version(
            base, name, loaded, settings.resolved_database_url(), sources.project_root(),
            settings.dataset_cache(), when, push)
    entry = added.entry
    typer.echo(f"{feedback.labelled} labelled predictions ({feedback.without_text} without text) "
               f"merged into {base}")
    if not added.created:
        typer.echo(f"the result is already {entry.ref} (md5 {entry.md5}): nothing to add")
        return
    typer.echo(f"added {entry.ref}: {entry.path}, md5 {entry.md5}, {entry.rows} rows, classes "
               f"{entry.classes}")
    _announce(entry)


@data_app.command("list")
def data_list(
    repo: Annotated[str | None, typer.Option(help="Another repository (path or git URL).")] = None,
    rev: Annotated[str | None, typer.Option(help="A git revision of that repository.")] = None,
) -> None:
    """Every dataset version: name@version, md5, rows, classes, when added."""
    from rich.console import Console
    from rich.table import Table

    from modelyard.env import apply_defaults

    apply_defaults()
    from modelyard.adapters import datasets as sources
    from modelyard.adapters.catalog import Catalog

    with _data_errors():
        entries = Catalog(repo or sources.project_root(), rev).entries()
    if not entries:
        typer.echo("no datasets yet: add one with `modelyard data add FILE --name NAME`")
        return
    table = Table(show_edge=False)
    for column in ("version", "md5", "rows", "classes", "added (UTC)"):
        table.add_column(column, no_wrap=column != "classes")
    for entry in entries:
        classes = " · ".join(f"{k} {v}" for k, v in entry.classes.items())
        added = (entry.added or "?")[:16].replace("T", " ")
        table.add_row(entry.ref, entry.md5[:10], str(entry.rows or "?"), classes, added)
    Console().print(table)


@data_app.command("show")
def data_show(
    version: Annotated[str, typer.Argument(help="NAME@VERSION, or an md5 (prefix).")],
    repo: Annotated[str | None, typer.Option(help="Another repository (path or git URL).")] = None,
) -> None:
    """One dataset version: rows, classes, hash, when added, and the models trained on it."""
    from modelyard.env import apply_defaults

    apply_defaults()
    from modelyard.config import Settings
    from modelyard.adapters import datasets as sources
    from modelyard.adapters.catalog import Catalog, CatalogError, DataRef
    from modelyard.registry.mlflow_registry import MlflowRegistry

    with _data_errors():
        catalog = Catalog(repo or sources.project_root())
        if "@" in version:
            entry, _ = catalog.resolve(DataRef.parse(version))
        else:
            matches = [e for e in catalog.entries() if e.md5.startswith(version.lower())]
            if not matches:
                raise CatalogError(f"no dataset version has an md5 starting with {version!r}")
            entry = matches[0]
        names = [e.ref for e in catalog.entries() if e.md5 == entry.md5]
    settings = Settings()
    registry = MlflowRegistry(settings.resolved_tracking_uri(), settings.experiment,
                              settings.artifact_root())
    models = registry.versions_trained_on(entry.md5)
    typer.echo(f"{entry.ref}\n  md5      {entry.md5}\n  path     {entry.path} ({entry.size} bytes)"
               f"\n  rows     {entry.rows}\n  classes  {entry.classes}\n  added    {entry.added}"
               f" from {entry.source}\n  names    {', '.join(names)}")
    if models:
        for model, number, aliases in models:
            tag = f" [{', '.join(aliases)}]" if aliases else ""
            typer.echo(f"  model    {model} version {number}{tag}")
    else:
        typer.echo("  model    none trained on it yet")


def _registry_and_audit() -> tuple[Any, Any]:
    from modelyard.config import Settings
    from modelyard.env import apply_defaults
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.store.audit import AuditLog

    apply_defaults()
    settings = Settings()
    registry = MlflowRegistry(settings.resolved_tracking_uri(), settings.experiment,
                              settings.artifact_root())
    return registry, AuditLog.from_url(settings.resolved_database_url())


def _fail(message: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(1)


def _user() -> str:
    import getpass

    try:
        return f"user:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "user:unknown"


@models_app.command("list")
def models_list() -> None:
    """Every registered model: versions and where its aliases point."""
    from rich.console import Console
    from rich.table import Table

    registry, _ = _registry_and_audit()
    table = Table(show_edge=False)
    for column in ("model", "versions", "staging", "production"):
        table.add_column(column)
    for name, aliases, count in registry.models():
        table.add_row(name, str(count), aliases.get("staging", "—"),
                      aliases.get("production", "—"))
    Console().print(table)


@models_app.command("show")
def models_show(name: str, version: str) -> None:
    """One version: aliases, lineage (dataset, git, params, validation, gate) and metrics."""
    from mlflow.exceptions import MlflowException

    registry, _ = _registry_and_audit()
    try:
        info = registry.version_info(name, version)
    except MlflowException:
        _fail(f"{name} has no version {version}")
    typer.echo(f"{name} version {info.version}  aliases: {', '.join(info.aliases) or 'none'}")
    for key in ("dataset_md5", "dataset_path", "git_commit", "params_hash", "validation",
                "gate_decision", "rejected", "approval", "approval_by", "approval_reason",
                "mlflow_run_id", "prefect_flow_run_id"):
        if key in info.tags:
            typer.echo(f"  {key:20s} {info.tags[key]}")
    if "gate_report" in info.tags:
        typer.echo("  gate checks")
        for line in info.tags["gate_report"].splitlines()[1:]:
            typer.echo(f"    {line}")
    if info.run_id:
        typer.echo(f"  {'gate report':20s} mlflow-run:{info.run_id}/gate/decision.md")
        params = registry.run_params(info.run_id)
        for section in ("model", "train", "gate"):
            values = ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in sorted(params.items())
                               if k.startswith(f"{section}."))
            if values:
                typer.echo(f"  {'params ' + section:20s} {values}")
        metrics = registry.run_metrics(info.run_id)
        for key in sorted(k for k in metrics if k.startswith("test_")):
            typer.echo(f"  {key:20s} {metrics[key]:.4f}")
        if "dp_epsilon" in metrics:
            typer.echo(f"  {'privacy':20s} differentially private, ε = {metrics['dp_epsilon']:.3f} "
                       f"at δ = {metrics.get('dp_delta', float('nan')):g}")
        _show_compute(registry, info.run_id)


def _show_compute(registry: Any, run_id: str) -> None:
    """What the version cost to produce: every training attempt of its run, summed."""
    from modelyard.training.cost import run_attempts, total

    attempts = run_attempts(registry, run_id)
    if not attempts:
        return
    tags = registry.run_tags(run_id)
    currency = tags.get("modelyard.compute.currency", "")
    device = tags.get("modelyard.compute.device", "?")
    name = tags.get("modelyard.compute.device_name", "")
    summed = total(attempts)
    typer.echo(f"  {'compute':20s} {int(summed['attempts'])} training attempt(s) on {device} "
               f"({name}): {summed['seconds']:.1f} s, {summed['device_hours']:.4f} device-h, "
               f"{summed['energy_kwh'] * 1000:.2f} Wh, {summed['co2_kg'] * 1000:.3f} g CO2, "
               f"cost {summed['cost']:.4f} {currency}")
    for number, attempt in enumerate(attempts, 1):
        typer.echo(f"    attempt {number}: {attempt['seconds']:.1f} s, "
                   f"{attempt['device_hours']:.4f} device-h, "
                   f"{attempt['samples_per_second']:.0f} samples/s, {attempt['cost']:.4f} "
                   f"{currency}")


@models_app.command("history")
def models_history(
    name: str,
    at: Annotated[str | None, typer.Option(help="An ISO time: which version was serving "
                                                "then.")] = None,
) -> None:
    """Every alias move of a model (the audit trail), or the version serving at a time."""
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.table import Table

    _, audit = _registry_and_audit()
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            _fail(f"--at {at!r} is not an ISO time (e.g. 2026-11-28T14:03:00+00:00)")
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        serving = audit.serving_at(name, when)
        typer.echo(f"{name}@production at {when.isoformat()}: "
                   f"{'version ' + serving if serving else 'nothing'}")
        return
    table = Table(show_edge=False)
    for column in ("when (UTC)", "alias", "kind", "from", "to", "by", "why"):
        table.add_column(column, no_wrap=column not in ("why", "by"), overflow="fold")
    for move in audit.history(name):
        table.add_row(move.moved_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), move.alias,
                      move.kind, move.from_version or "—", move.to_version, move.actor,
                      move.reason)
    Console().print(table)


_FORCE_OPTION = typer.Option(
    "--force", help="Override the rules (a version the gate rejected, or whose deployment "
                    "failed) with --reason; audited as forced.")


@models_app.command("promote")
def models_promote(
    name: str, version: str,
    to: Annotated[str, typer.Option(help="The alias: staging or production.")] = "production",
    reason: Annotated[str | None, typer.Option(help="Why, for the audit trail (required with "
                                                    "--force).")] = None,
    force: Annotated[bool, _FORCE_OPTION] = False,
) -> None:
    """Point an alias at a version by hand (audited). Versions the gate rejected, or whose
    deployment failed (for production), are refused unless forced."""
    if to not in ("staging", "production"):
        _fail(f"--to must be staging or production, not {to!r}")
    registry, audit = _registry_and_audit()
    with audit.promotion_lock(name):
        current = registry.alias_version(name, to)
        decision = _decide_move(registry, name, to, version, current, reason,
                                "manual promotion", force)
        if decision.moves:
            audit.move(registry, name, to, version, kind="manual", actor=_user(),
                       reason=decision.audit_reason)
    typer.echo(_moved_line(name, decision, "moved"))


def _decide_move(registry: MlflowRegistry, name: str, alias: str, version: str,
                 current: str | None, reason: str | None, default_reason: str,
                 force: bool) -> AliasDecision:
    """The rule book's answer for moving `alias` to `version` (exit 1 with the refusal)."""
    from mlflow.exceptions import MlflowException

    from modelyard.promotion import Verdict, decide_alias_move

    try:
        tags = registry.version_info(name, version).tags
    except MlflowException:
        _fail(f"{name} has no version {version}")
    decision = decide_alias_move(version, tags, alias, current, reason, default_reason, force)
    if decision.verdict is Verdict.REFUSED:
        where = f"version {current}" if current is not None else "no version"
        _fail(f"{name}@{alias} stays at {where}: {decision.refusal}")
    return decision


def _moved_line(name: str, decision: AliasDecision, verb: str) -> str:
    """What happened, naming exactly the from and to versions."""
    alias, version = decision.alias, decision.version
    if not decision.moves:
        return f"{name}@{alias} is already version {version}: nothing moved, nothing audited"
    line = (f"{name}@{alias} {verb}: version {decision.current} -> {version}"
            if decision.current is not None else
            f"{name}@{alias} {verb}: version {version} (it named no version before)")
    return line + (f" ({decision.audit_reason}; audited)" if decision.forced else "")


_PAUSE_SETTLE_S = 60.0


def _pausing(flow_run: str) -> bool:
    """Whether the run is still on its way to the pause (running, not ended)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(flow_run)).state
    return state is not None and (state.is_running() or state.is_paused())


def _answer(name: str, version: str, approve: bool, reason: str) -> None:
    """Resume the retrain paused for `version` with a reviewer's answer, as the Prefect UI's
    form does."""
    from uuid import UUID

    from mlflow.exceptions import MlflowException
    from prefect.exceptions import FlowPauseTimeout, NotPausedError
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import get_current_settings

    registry, _ = _registry_and_audit()
    try:
        info = registry.version_info(name, version)
    except MlflowException:
        _fail(f"{name} has no version {version}")
    status, flow_run = info.tags.get("approval"), info.tags.get("approval_flow_run")
    if status != "waiting" or not flow_run:
        _fail(f"{name} version {version} is not waiting for approval (approval: "
              f"{status or 'never asked'}); `modelyard models promote {name} {version}` moves "
              "production by hand")
    if not get_current_settings().api.url:
        _fail(f"the retrain waiting for it is flow run {flow_run} on a Prefect server: set "
              "PREFECT_API_URL to that server")
    answer = {"approve": approve, "reviewer": _user().removeprefix("user:"), "reason": reason}
    # The run tags the version "waiting" just before it pauses and saves its form's schema just
    # after: an answer given in between finds it still running, or paused without a schema.
    # Both last a moment, so the answer is retried for a while before it counts as too late.
    deadline = time.monotonic() + _PAUSE_SETTLE_S
    while True:
        try:
            resume_flow_run(UUID(flow_run), run_input=answer)
            break
        except NotPausedError:
            if not _pausing(flow_run) or time.monotonic() > deadline:
                _fail(f"flow run {flow_run}, which asked for approval of {name} version "
                      f"{version}, is no longer paused (answered, timed out or cancelled)")
        except FlowPauseTimeout:
            _fail(f"flow run {flow_run} stopped waiting: its approval timed out")
        except RuntimeError as exc:
            if "schema not found" not in str(exc) or time.monotonic() > deadline:
                _fail(f"flow run {flow_run} refused the answer: {exc}")
        if registry.version_info(name, version).tags.get("approval") != "waiting":
            _fail(f"{name} version {version} is no longer waiting for approval")
        time.sleep(0.5)
    verb = "approved" if approve else "rejected"
    typer.echo(f"{name} version {version} {verb}: flow run {flow_run} resumes"
               + (" and promotes it (after re-checking against the current production)"
                  if approve else "; production does not move"))


@models_app.command("approve")
def models_approve(
    name: str, version: str,
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "",
) -> None:
    """Approve a version waiting in staging (promotion.mode manual): its retrain promotes it."""
    _answer(name, version, True, reason)


@models_app.command("reject")
def models_reject(
    name: str, version: str,
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "",
) -> None:
    """Reject a version waiting for approval: its retrain ends without promoting it."""
    _answer(name, version, False, reason)


@models_app.command("rollback")
def models_rollback(
    name: str,
    to: Annotated[str | None, typer.Option(help="The version (default: the one the current "
                                                "production replaced).")] = None,
    reason: Annotated[str | None, typer.Option(help="Why, for the audit trail (required with "
                                                    "--force).")] = None,
    force: Annotated[bool, _FORCE_OPTION] = False,
) -> None:
    """Move production back to the previous production version, and record why. The same rules
    as promote: versions the gate rejected or whose deployment failed are refused unless
    forced."""
    from modelyard.registry.mlflow_registry import PRODUCTION

    registry, audit = _registry_and_audit()
    with audit.promotion_lock(name):
        current = registry.alias_version(name, PRODUCTION)
        if current is None:
            _fail(f"{name} has no production version to roll back from")
        target = to or audit.rollback_target(name, current)
        if target is None:
            _fail(f"{name}@production (version {current}) replaced nothing in the audit trail: "
                  "name the version with --to")
        decision = _decide_move(registry, name, PRODUCTION, target, current, reason, "rollback",
                                force)
        if decision.moves:
            audit.move(registry, name, PRODUCTION, target, kind="rollback", actor=_user(),
                       reason=decision.audit_reason)
    typer.echo(_moved_line(name, decision, "rolled back"))


def _load_params_or_exit(path: Path) -> Any:
    from rich.console import Console
    from rich.markup import escape

    from modelyard.config import ConfigError, load_params

    try:
        return load_params(path)
    except ConfigError as error:
        Console(stderr=True).print(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(2) from None


class _data_errors:
    """Data problems (a bad file, an unknown version) end the command with exit 1 and the
    message, not a traceback."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, trace: Any) -> bool:
        if error is None:
            return False
        from modelyard.adapters.catalog import CatalogError
        from modelyard.data.dataset import DatasetError
        from modelyard.data.validation import DataValidationError
        from modelyard.adapters.dvc import DvcError

        if isinstance(error, CatalogError | DatasetError | DataValidationError | DvcError):
            from rich.console import Console
            from rich.markup import escape

            Console(stderr=True).print(f"[red]error:[/] {escape(str(error))}\nNothing was added "
                                       "or changed.")
            raise typer.Exit(1) from None
        return False


def _stage(name: str, params: Path) -> None:
    from modelyard.env import apply_defaults

    apply_defaults()
    loaded = _load_params_or_exit(params)
    from modelyard.orchestration import pipeline

    with _data_errors():
        result = getattr(pipeline, name)(loaded)
    if name == "prepare":
        typer.echo(f"prepared {pipeline.PREPARED}: {result.sizes()}")
    elif name == "validate":
        typer.echo(f"validation: {result.summary()}; Data Docs: {pipeline.VALIDATION}/index.html")
    elif name == "train":
        typer.echo(f"trained {pipeline.MODEL}: best epoch {result.result.best_epoch}, "
                   f"{result.result.steps} steps in {result.result.seconds:.1f}s")
    else:
        typer.echo(f"test accuracy {result.accuracy:.4f}, macro-F1 {result.macro_f1:.4f} "
                   f"→ {pipeline.METRICS}")


_PARAMS_OPTION = typer.Option(help="The params file.")


@app.command()
def train(
    nproc: Annotated[int, typer.Option(help="Processes under torchrun (one per GPU; gloo on "
                                            "CPUs).")] = 1,
    params: Annotated[Path, _PARAMS_OPTION] = Path("params.yaml"),
) -> None:
    """Fine-tune on the prepared split (build/prepared) into build/model, on N processes."""
    from modelyard.env import apply_defaults

    apply_defaults()
    loaded = _load_params_or_exit(params)
    from modelyard.config import ConfigError

    try:
        loaded = loaded.updated({"train.nproc": nproc})
    except ConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    from modelyard.orchestration import pipeline

    with _data_errors():
        result = pipeline.train(loaded)
    typer.echo(f"trained {pipeline.MODEL} on {nproc} process(es): {result.result.steps} steps, "
               f"best epoch {result.result.best_epoch}, {result.result.samples_per_second:.0f} "
               "samples/s")


@stage_app.command("prepare")
def stage_prepare(params: Annotated[Path, _PARAMS_OPTION] = Path("params.yaml")) -> None:
    """Read data.path (and data.test_path), write the train/val/test split as Parquet."""
    _stage("prepare", params)


@stage_app.command("validate")
def stage_validate(params: Annotated[Path, _PARAMS_OPTION] = Path("params.yaml")) -> None:
    """Run the expectation suite; Data Docs to build/validation/; exit 1 when it fails."""
    _stage("validate", params)


@stage_app.command("train")
def stage_train(params: Annotated[Path, _PARAMS_OPTION] = Path("params.yaml")) -> None:
    """Fine-tune on the prepared split; the model to build/model/."""
    _stage("train", params)


@stage_app.command("evaluate")
def stage_evaluate(params: Annotated[Path, _PARAMS_OPTION] = Path("params.yaml")) -> None:
    """Score build/model on the test split; build/metrics.json for `dvc metrics show`."""
    _stage("evaluate", params)


@app.command()
def serve(
    params: Annotated[Path, typer.Option(help="The params file (model.name, serving).")] = Path(
        "params.yaml"),
    alias: Annotated[str | None, typer.Option(help="The alias to follow (default: "
                                                   "serving.alias).")] = None,
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the server to "
                                          "the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
) -> None:
    """Serve models:/<model.name>@<alias> over REST, following the alias as it moves."""
    import logging

    import uvicorn

    from modelyard.config import Settings
    from modelyard.env import apply_defaults
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.serving.app import create_app

    apply_defaults()
    loaded = _load_params_or_exit(params)
    serving = loaded.serving if alias is None else loaded.serving.model_copy(
        update={"alias": alias})
    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger("modelyard.serving").warning(
            "binding %s: the server is reachable from other machines", host)
    application = create_app(
        lambda: MlflowRegistry(settings.resolved_tracking_uri(), settings.experiment,
                               settings.artifact_root()),
        loaded.model.name, serving, settings.resolved_database_url(), settings.admin_token,
        loaded.privacy, loaded.explain)
    uvicorn.run(application, host=host, port=port, log_level="info")


@app.command()
def predict(
    input: Annotated[str, typer.Option("--input", help="CSV/TSV/Parquet/JSONL file, or "
                                                       "sql:TABLE in the platform database.")],
    output: Annotated[str, typer.Option("--output", help="Where to write (same forms); the "
                                                         "suffix picks the format.")],
    params: Annotated[Path, typer.Option(help="The params file (model.name).")] = Path(
        "params.yaml"),
    alias: Annotated[str, typer.Option(help="The alias to score with.")] = "production",
    version: Annotated[str | None, typer.Option(help="A version instead of the alias.")] = None,
    text_column: Annotated[str | None, typer.Option(help="Default: data.text_column.")] = None,
    chunk_rows: Annotated[int, typer.Option(help="Rows per resumable chunk.", min=1)] = 10000,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Overwrite an existing output file or table (atomically, once every "
                          "row is scored). The platform's own tables are never written.")] = False,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Leave out rows whose text is empty or not text (they are "
                               "listed; the output has no row for them) instead of "
                               "refusing the input.")] = False,
) -> None:
    """Batch prediction (the batch-predict flow): resumable, one model version per output."""
    import sys

    from modelyard.adapters.batch import BatchError, check_input, check_output
    from modelyard.config import Settings
    from modelyard.env import apply_defaults

    apply_defaults()
    loaded = _load_params_or_exit(params)
    database = Settings().resolved_database_url()
    # Cheap, and before Prefect or a model: stored tables and files are never clobbered, and bad
    # input is refused in a second, naming its rows, not after a server and a model have started.
    try:
        check_output(output, database, replace)
        check_input(input, database, text_column or loaded.data.text_column, skip_invalid)
    except BatchError as error:
        _fail(f"{error}\nNothing was scored or written.")
    from flows.batch_predict import batch_predict

    try:
        result = batch_predict(input=input, output=output, params_path=str(params), alias=alias,
                               version=version, text_column=text_column, chunk_rows=chunk_rows,
                               progress=sys.stderr.isatty(), replace=replace,
                               skip_invalid=skip_invalid)
    except (BatchError, LookupError) as error:
        _fail(str(error))
    resumed = (f" ({result['chunks_resumed']} chunks from an interrupted run)"
               if result["chunks_resumed"] else "")
    typer.echo(f"{result['rows']} rows scored by {result['model']} version {result['version']} "
               f"-> {result['output']}{resumed}")
    skipped = result["skipped"]
    if skipped:
        from modelyard.data.input_check import listed

        typer.echo(f"skipped {len(skipped)} row{'s' if len(skipped) > 1 else ''} of {input} "
                   f"whose text is empty or not text ({listed(result['skipped_unit'], skipped)})"
                   ": the output has no row for them")


@app.command()
def explain(
    text: Annotated[str, typer.Argument(help="The text to explain.")],
    version: Annotated[str | None, typer.Option(help="A model version (default: the alias's).")
                       ] = None,
    alias: Annotated[str, typer.Option(help="The alias to explain.")] = "production",
    label: Annotated[str | None, typer.Option(help="The class to explain (default: the "
                                                   "predicted one).")] = None,
    params: Annotated[Path, typer.Option(help="The params file (model.name, explain).")] = Path(
        "params.yaml"),
    html: Annotated[Path | None, typer.Option(help="Also write an HTML snippet here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """Why the model decided: each word's attribution toward the predicted class (integrated
    gradients), coloured in the terminal: green for, red against."""
    import json

    from mlflow.exceptions import MlflowException
    from rich.console import Console

    from modelyard.explain import Explainer, to_html, to_rich_text

    loaded = _load_params_or_exit(params)
    registry, _ = _registry_and_audit()
    name = loaded.model.name
    try:
        classifier = registry.load_classifier(name, alias=alias, version=version)
    except MlflowException:
        _fail(f"{name} has no {'version ' + version if version else 'alias @' + alias}")
    try:
        explanation = Explainer(classifier, loaded.explain.n_steps).explain(text, label)
    except ValueError as error:
        _fail(str(error))
    if html is not None:
        html.write_text(to_html(explanation), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(explanation.to_dict(), indent=2))
        return
    console = Console(highlight=False)
    which = f"version {version}" if version else f"@{alias}"
    console.print(f"{name} {which}: [bold]{explanation.label}[/bold] "
                  f"p={explanation.probability:.3f}"
                  + ("" if explanation.label == explanation.predicted
                     else f" (predicted {explanation.predicted})"))
    console.print(to_rich_text(explanation))
    for token in explanation.ranked()[:5]:
        console.print(f"  {token.attribution:+.4f}  {token.token}")
    if explanation.truncated:
        console.print("[yellow]the text is longer than the model reads; the rest was not "
                      "scored[/yellow]")


def _stack_config(root: Path, params: Path) -> Any:
    import os

    from modelyard.orchestration.stack import PORT_ENV, PREFIX_ENV, StackConfig

    def port(service: str, default: str) -> int:
        return int(os.environ.get(PORT_ENV.format(service.upper()), default))

    return StackConfig(
        root=root.resolve(), params=params.resolve(), project=Path.cwd().resolve(),
        postgres=os.environ.get("MODELYARD_STACK_POSTGRES", "postgresql://postgres@127.0.0.1:5432"),
        # Unset: names of this project's own (see modelyard.orchestration.stack.default_prefix).
        prefix=os.environ.get(PREFIX_ENV) or None,
        prefect_port=port("prefect", "4200"), mlflow_port=port("mlflow", "5000"),
        model_port=port("model", "8000"),
        artifacts=os.environ.get("MODELYARD_STACK_ARTIFACTS"))


_STACK_ROOT = typer.Option(help="Where the stack keeps its state, logs and artifacts.")


def _print_stack(config: Any) -> None:
    """The URLs, then the export lines a shell needs to use the stack."""
    from modelyard.orchestration.stack import export_lines

    urls = config.urls
    typer.echo(f"Prefect UI   {urls['prefect']}\nMLflow UI    {urls['mlflow']}\n"
               f"model API    {urls['model']}/docs\nlogs         {config.root / 'logs'}\n"
               f"databases    {', '.join(config.database_names().values())}\n"
               "use it from this shell with (or: eval \"$(modelyard stack env)\"):")
    for line in export_lines(config.client_env()):
        typer.echo(f"  {line}")


@stack_app.command("up")
def stack_up(
    root: Annotated[Path, _STACK_ROOT] = Path(".modelyard/stack"),
    params: Annotated[Path, typer.Option(help="The params file the model server reads.")] = Path(
        "params.yaml"),
    deploy_flows: Annotated[bool, typer.Option("--deploy/--no-deploy", help="Deploy the flows on "
                                               "the stack's work pool.")] = True,
) -> None:
    """Start the stack (supervised, in the background) and print its URLs and exports; when one
    is already running from ROOT, say so and print its."""
    from modelyard.orchestration.stack import running, supervisor_pid, up

    current = running(root.resolve())
    if current is not None:
        typer.echo(f"a stack is already running from {current.root} (supervisor pid "
                   f"{supervisor_pid(current.root)}); nothing started. `modelyard stack down` "
                   "stops it.", err=True)
        _load_params_or_exit(current.params)
        _print_stack(current)
        return
    _load_params_or_exit(params)
    config = _stack_config(root, params)
    try:
        up(config)
    except Exception as error:  # noqa: BLE001 - one line for the person at the terminal
        _fail(str(error))
    if deploy_flows:
        import os

        from prefect.settings import PREFECT_API_URL, temporary_settings

        from modelyard.orchestration.deployments import deploy

        env = config.client_env()
        os.environ.update(env)
        with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
            deploy(Path.cwd(), config.work_pool)
    _print_stack(config)


@stack_app.command("env")
def stack_env(root: Annotated[Path, _STACK_ROOT] = Path(".modelyard/stack")) -> None:
    """Print the export lines of the stack running from ROOT: eval "$(modelyard stack env)"."""
    from modelyard.orchestration.stack import export_lines, running

    config = running(root.resolve())
    if config is None:
        _fail(f"no stack is running from {root}: `make up` starts one")
    _load_params_or_exit(config.params)  # the exports name the model its server follows
    for line in export_lines(config.client_env()):
        typer.echo(line)


@stack_app.command("down")
def stack_down(root: Annotated[Path, _STACK_ROOT] = Path(".modelyard/stack")) -> None:
    """Stop exactly what `stack up` started."""
    from modelyard.orchestration.stack import down

    typer.echo("stopped" if down(root.resolve()) else f"no stack is running from {root}")


@app.command()
def deploy(
    work_pool: Annotated[str, typer.Option(help="The work pool (process or kubernetes).")] = "cpu",
) -> None:
    """Create or update the deployments of the platform's flows on a work pool (PREFECT_API_URL
    must name a server)."""
    from prefect.settings import get_current_settings

    from modelyard.orchestration.deployments import deploy as deploy_flows
    from modelyard.env import apply_defaults

    apply_defaults()
    if not get_current_settings().api.url:
        _fail("deployments live on a Prefect server: set PREFECT_API_URL (`modelyard stack up` "
              "prints it)")
    for name, identifier in deploy_flows(Path.cwd(), work_pool).items():
        typer.echo(f"{name}/{name} on {work_pool}: {identifier}")


@app.command()
def doctor() -> None:
    """Check every configured endpoint and say what is wrong and how to fix it."""
    from rich.console import Console
    from rich.table import Table

    from modelyard.orchestration.doctor import run_checks
    from modelyard.env import apply_defaults

    apply_defaults()
    checks = run_checks()
    table = Table(show_edge=False)
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        table.add_row(check.name, "[green]ok[/]" if check.ok else "[red]FAIL[/]", check.detail,
                      check.fix or "")
    Console().print(table)
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


@app.command()
def monitor(
    params: Annotated[Path, typer.Option(help="The params file (model.name, monitor).")] = Path(
        "params.yaml"),
    alias: Annotated[str, typer.Option(help="The alias whose version is watched.")] = "production",
) -> None:
    """Run the monitor flow once: drift and live quality over the last window."""
    from modelyard.env import apply_defaults

    apply_defaults()
    _load_params_or_exit(params)
    from flows.monitor import monitor as monitor_flow

    report = monitor_flow(params_path=str(params), alias=alias)
    if report.get("version") is None:
        typer.echo(" ".join(report["notes"]))
        return
    verdict = "DEGRADED" if report["degraded"] else "healthy"
    typer.echo(f"{report['model']} version {report['version']}: {verdict} "
               f"({report['predictions']} predictions)")
    for test in report.get("tests", []):
        typer.echo(f"  {'ALARM' if test['alarm'] else 'ok':5s} {test['name']}: {test['detail']}")
    if report.get("quality"):
        quality = report["quality"]
        typer.echo(f"  {'ALARM' if quality['alarm'] else 'ok':5s} live quality: "
                   f"{quality['detail']}")
    for note in report.get("notes", []):
        typer.echo(f"  note: {note}")
    _print_action(report.get("action"))


def _print_action(action: dict[str, Any] | None) -> None:
    """What the monitor did about a degradation, the event it sent and the run that started."""
    if not action:
        return
    typer.echo(f"action: {action['kind']}: {action['reason']}")
    if action.get("dataset"):
        typer.echo(f"  dataset version {action['dataset']}")
    if action.get("event"):
        typer.echo(f"  event {action['event']} sent")
    elif action["kind"] in {"new-data", "alert"}:
        typer.echo("  no event sent (no Prefect server, or the version already existed)")
    if action.get("dataset") and action.get("event"):
        _report_triggered_run(action["dataset"])


@app.command("demo-traffic")
def demo_traffic(
    url: Annotated[str, typer.Option(help="The model server.")] = "http://127.0.0.1:8000",
    count: Annotated[int, typer.Option(help="Texts to send.", min=1)] = 500,
    shifted: Annotated[bool, typer.Option("--shifted", help="Drifted texts.")] = False,
    feedback: Annotated[float, typer.Option(help="Share answered with feedback.",
                                            min=0, max=1)] = 0.3,
) -> None:
    """Send generated reviews (or a drifted variant) to a server, with feedback: the demo."""
    from modelyard.demo import send

    answered, stored = send(url, count, shifted, feedback)
    typer.echo(f"{answered} predictions, {stored} feedback{' (shifted)' if shifted else ''}")


@app.command()
def ui(port: Annotated[int, typer.Option(help="Port for the MLflow UI.")] = 5000) -> None:
    """Open the MLflow UI on the embedded store."""
    import os
    import shutil

    from modelyard.config import Settings

    uri = Settings().resolved_tracking_uri()
    mlflow = shutil.which("mlflow") or "mlflow"
    os.execv(mlflow, [mlflow, "ui", "--backend-store-uri", uri, "--port", str(port)])


def main() -> None:
    app()
if __name__ == "__main__":
    main()
