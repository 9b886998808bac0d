"""`modelyard models …`: the registry's models and versions, where their aliases point and how
they moved, and moving them by hand (promote, approve, reject, rollback), audited."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli._common import (
    Refused,
    Typer,
    current_user,
    parse_time,
    print_error,
    registry_and_audit,
)
from modelyard.cli.reproduce import models_reproduce

if TYPE_CHECKING:
    from modelyard.promotion import AliasDecision
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.store.audit import AuditLog

app = Typer(
    help="The model registry: versions, aliases, their history, rollback.", no_args_is_help=True
)
app.command("reproduce")(models_reproduce)


@app.command("list")
def models_list() -> None:
    """Every registered model: versions and where its aliases point."""
    from rich.console import Console
    from rich.table import Table

    from modelyard.tags import PRODUCTION, STAGING

    registry, _ = registry_and_audit()
    table = Table(show_edge=False)
    for column in ("model", "versions", STAGING, PRODUCTION):
        table.add_column(column)
    for name, aliases, count in registry.models():
        table.add_row(name, str(count), aliases.get(STAGING, "—"), aliases.get(PRODUCTION, "—"))
    Console().print(table)


@app.command("show")
def models_show(name: str, version: str) -> None:
    """One version: aliases, lineage (dataset, git, params, validation, gate) and metrics."""
    from mlflow.exceptions import MlflowException

    from modelyard import tags as tag

    registry, audit = registry_and_audit()
    try:
        info = registry.version_info(name, version)
    except MlflowException:
        raise Refused(f"{name} has no version {version}") from None
    _warn_if_tampered(registry, audit, name)
    typer.echo(f"{name} version {info.version}  aliases: {', '.join(info.aliases) or 'none'}")
    for key in tag.SHOWN_VERSION_TAGS:
        if key in info.tags:
            typer.echo(f"  {key:20s} {info.tags[key]}")
    if tag.GATE_REPORT in info.tags:
        typer.echo("  gate checks")
        for line in info.tags[tag.GATE_REPORT].splitlines()[1:]:
            typer.echo(f"    {line}")
    if info.run_id:
        _show_run(registry, info.run_id)


def _warn_if_tampered(registry: MlflowRegistry, audit: AuditLog, name: str) -> None:
    """Name a production move the audit trail does not record (and announce it to Prefect)."""
    from modelyard.adapters.pointer import pointer
    from modelyard.orchestration.events import emit_registry_tampered

    found = pointer(registry, audit, name)
    if found is not None and found.tampered:
        print_error(f"{found.sentence}; servers keep serving the recorded version")
        emit_registry_tampered(found, "modelyard models show")


def _show_run(registry: MlflowRegistry, run_id: str) -> None:
    """The training run's gate report, params, test metrics, privacy budget and cost."""
    from modelyard import tags as tag

    typer.echo(f"  {'gate report':20s} mlflow-run:{run_id}/gate/decision.md")
    params = registry.run_params(run_id)
    for section in ("model", "train", "gate"):
        values = ", ".join(
            f"{k.split('.', 1)[1]}={v}"
            for k, v in sorted(params.items())
            if k.startswith(f"{section}.")
        )
        if values:
            typer.echo(f"  {'params ' + section:20s} {values}")
    metrics = registry.run_metrics(run_id)
    for key in sorted(k for k in metrics if k.startswith((tag.TEST, tag.SLICE))):
        typer.echo(f"  {key:20s} {metrics[key]:.4f}")
    if tag.DP_EPSILON in metrics:
        typer.echo(
            f"  {'privacy':20s} differentially private, ε = {metrics[tag.DP_EPSILON]:.3f} "
            f"at δ = {metrics.get(tag.DP_DELTA, float('nan')):g}"
        )
    _show_compute(registry, run_id)


def _show_compute(registry: MlflowRegistry, run_id: str) -> None:
    """What the version cost to produce: every training attempt of its run, summed."""
    from modelyard import tags as tag
    from modelyard.registry.training_log import recorded_attempts
    from modelyard.training.cost import total

    attempts = recorded_attempts(registry, run_id)
    if not attempts:
        return
    tags = registry.run_tags(run_id)
    currency = tags.get(tag.COMPUTE_CURRENCY, "")
    device = tags.get(tag.COMPUTE_DEVICE, "?")
    name = tags.get(tag.COMPUTE_DEVICE_NAME, "")
    summed = total(attempts)
    typer.echo(
        f"  {'compute':20s} {int(summed['attempts'])} training attempt(s) on {device} "
        f"({name}): {summed['seconds']:.1f} s, {summed['device_hours']:.4f} device-h, "
        f"{summed['energy_kwh'] * 1000:.2f} Wh, {summed['co2_kg'] * 1000:.3f} g CO2, "
        f"cost {summed['cost']:.4f} {currency}"
    )
    for number, attempt in enumerate(attempts, 1):
        typer.echo(
            f"    attempt {number}: {attempt['seconds']:.1f} s, "
            f"{attempt['device_hours']:.4f} device-h, "
            f"{attempt['samples_per_second']:.0f} samples/s, {attempt['cost']:.4f} "
            f"{currency}"
        )


@app.command("card")
def models_card(
    name: str,
    version: str,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write the card as a standalone HTML page here."),
    ] = None,
) -> None:
    """A version's model card, made from what the platform recorded (registry, MLflow run,
    audit trail): Markdown, rendered on a terminal and plain when piped; --html writes the
    standalone page too."""
    import sys

    from modelyard.adapters.cards import CardError, gather
    from modelyard.card import render
    from modelyard.config import Settings

    if html is not None and not html.parent.is_dir():
        raise Refused(f"--html {html}: no directory {html.parent}")
    registry, audit = registry_and_audit()
    try:
        facts = gather(registry, audit, name, version, Settings().resolved_mlflow_ui_url())
    except CardError as error:
        raise Refused(str(error)) from None
    card = render(facts)
    if html is not None:
        html.write_text(card.html, encoding="utf-8")
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(card.markdown))
    else:
        typer.echo(card.markdown, nl=False)
    if html is not None:
        typer.echo(f"HTML card written to {html}", err=True)


@app.command("history")
def models_history(
    name: str,
    at: Annotated[
        str | None, typer.Option(help="An ISO time: which version was serving then.")
    ] = None,
) -> None:
    """Every alias move of a model (the audit trail), or the version serving at a time."""
    from datetime import UTC

    from rich.console import Console
    from rich.table import Table

    _, audit = registry_and_audit()
    if at is not None:
        when = parse_time(at, f"--at {at!r} is not an ISO time (e.g. 2026-11-28T14:03:00+00:00)")
        serving = audit.serving_at(name, when)
        typer.echo(
            f"{name}@production at {when.isoformat()}: "
            f"{'version ' + serving if serving else 'nothing'}"
        )
        return
    table = Table(show_edge=False)
    for column in ("when (UTC)", "alias", "kind", "from", "to", "by", "why"):
        table.add_column(column, no_wrap=column not in ("why", "by"), overflow="fold")
    for move in audit.history(name):
        table.add_row(
            move.moved_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            move.alias,
            move.kind,
            move.from_version or "—",
            move.to_version or "—",  # empty: the alias was removed (a rollout ended)
            move.actor,
            move.reason,
        )
    Console().print(table)


_FORCE_OPTION = typer.Option(
    "--force",
    help="Override the rules (a version the gate rejected, or whose deployment "
    "failed) with --reason; audited as forced.",
)
_AS_OPTION = typer.Option(
    "--as",
    help="Who does it, for the audit trail and promotion.approvers (default: the OS user).",
)
_PARAMS_OPTION = typer.Option(
    help="The params file whose promotion.approvers may move production (none there: anyone)."
)


def _actor(as_: str | None) -> str:
    """The person the audit trail names: `--as NAME`, else the OS user."""
    if as_ is None:
        return current_user()
    if not as_.strip():
        raise Refused("--as needs a name")
    return f"user:{as_.strip().removeprefix('user:')}"


def _approvers(params: Path) -> tuple[str, ...]:
    """promotion.approvers of the params file; none (anyone) when the default file is absent,
    as outside a project."""
    from modelyard.config import load_params

    if params == Path("params.yaml") and not params.exists():
        return ()
    return load_params(params).promotion.approvers


@app.command("promote")
def models_promote(
    name: str,
    version: str,
    to: Annotated[str, typer.Option(help="The alias: staging or production.")] = "production",
    reason: Annotated[
        str | None, typer.Option(help="Why, for the audit trail (required with --force).")
    ] = None,
    force: Annotated[bool, _FORCE_OPTION] = False,
    as_: Annotated[str | None, _AS_OPTION] = None,
    params: Annotated[Path, _PARAMS_OPTION] = Path("params.yaml"),
) -> None:
    """Point an alias at a version by hand (audited). Versions the gate rejected, or whose
    deployment failed (for production), are refused unless forced; production only by a
    person promotion.approvers lists (when it lists anyone)."""
    from modelyard.adapters.manual_moves import promote_by_hand

    if to not in ("staging", "production"):
        raise Refused(f"--to must be staging or production, not {to!r}")
    registry, audit = registry_and_audit()
    decision = promote_by_hand(
        registry, audit, name, to, version, _actor(as_), reason, force, _approvers(params)
    )
    typer.echo(_moved_line(name, decision, "moved"))


@app.command("approve")
def models_approve(
    name: str,
    version: str,
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "",
    as_: Annotated[str | None, _AS_OPTION] = None,
    params: Annotated[Path, _PARAMS_OPTION] = Path("params.yaml"),
) -> None:
    """Approve a version waiting in staging (promotion.mode manual): its retrain promotes it."""
    _answer(name, version, True, reason, _actor(as_), params)


@app.command("reject")
def models_reject(
    name: str,
    version: str,
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "",
    as_: Annotated[str | None, _AS_OPTION] = None,
    params: Annotated[Path, _PARAMS_OPTION] = Path("params.yaml"),
) -> None:
    """Reject a version waiting for approval: its retrain ends without promoting it."""
    _answer(name, version, False, reason, _actor(as_), params)


def _answer(name: str, version: str, approve: bool, reason: str, actor: str, params: Path) -> None:
    from modelyard.adapters.manual_moves import check_approver
    from modelyard.orchestration.approval import answer

    registry, audit = registry_and_audit()
    verb = "approve" if approve else "reject"
    what = f"{verb} {name} version {version} (promotion.mode manual)"
    check_approver(registry, audit, name, actor, _approvers(params), what)
    reviewer = actor.removeprefix("user:")
    flow_run = answer(registry, name, version, approve, reviewer, reason)
    verb = "approved" if approve else "rejected"
    typer.echo(
        f"{name} version {version} {verb}: flow run {flow_run} resumes"
        + (
            " and promotes it (after re-checking against the current production)"
            if approve
            else "; production does not move"
        )
    )


@app.command("rollback")
def models_rollback(
    name: str,
    to: Annotated[
        str | None,
        typer.Option(help="The version (default: the one the current production replaced)."),
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Why, for the audit trail (required with --force).")
    ] = None,
    force: Annotated[bool, _FORCE_OPTION] = False,
    as_: Annotated[str | None, _AS_OPTION] = None,
    params: Annotated[Path, _PARAMS_OPTION] = Path("params.yaml"),
) -> None:
    """Move production back to the previous production version (after a move made outside
    ModelYard: to the one the audit trail records), and record why. The same rules as promote:
    versions the gate rejected or whose deployment failed are refused unless forced; only a
    person promotion.approvers lists (when it lists anyone)."""
    from modelyard.adapters.manual_moves import roll_back

    registry, audit = registry_and_audit()
    decision = roll_back(registry, audit, name, to, _actor(as_), reason, force, _approvers(params))
    typer.echo(_moved_line(name, decision, "rolled back"))


def _moved_line(name: str, decision: AliasDecision, verb: str) -> str:
    """What happened, naming exactly the from and to versions."""
    alias, version = decision.alias, decision.version
    if not decision.moves:
        return f"{name}@{alias} is already version {version}: nothing moved, nothing audited"
    line = (
        f"{name}@{alias} {verb}: version {decision.current} -> {version}"
        if decision.current is not None
        else f"{name}@{alias} {verb}: version {version} (it named no version before)"
    )
    return line + (f" ({decision.audit_reason}; audited)" if decision.forced else "")
