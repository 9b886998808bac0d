"""`modelyard rollout …`: a model's rollout (a challenger on trial against production, shadow or
canary): where it stands, its verdict now, and a person's promote or abort — under the same
promotion lock as every other promotion, audited."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli._common import Refused, Typer, current_user

if TYPE_CHECKING:
    from modelyard.adapters.rollout_actions import Ended, Stores
    from modelyard.rollout import Outcome
    from modelyard.store.rollouts import Rollout

app = Typer(
    help="Rollouts: a challenger on trial against production, promoted or aborted on live "
    "evidence.",
    no_args_is_help=True,
)

_REASON = typer.Option(help="Why, for the audit trail.")
_AS = typer.Option("--as", help="Who decides (default: the login name), for the audit trail.")


def _stores(name: str) -> Stores:
    """The stores the settings name; Refused when `name` is no model of theirs."""
    from modelyard.adapters.rollout_actions import Stores
    from modelyard.config import Settings

    stores = Stores.from_settings(Settings())
    if not stores.registry.has_model(name) and not stores.rollouts.history(name):
        raise Refused(f"there is no model named {name!r} in the registry")
    return stores


def _open(stores: Stores, name: str) -> Rollout:
    found = stores.rollouts.current(name)
    if found is None:
        raise Refused(
            f"{name} has no open rollout (a retrain with rollout.strategy shadow or canary opens "
            f"one; `modelyard rollout status {name}` shows the past ones)"
        )
    return found


@app.command("status")
def rollout_status(name: str) -> None:
    """The open rollout of a model, its newest verdict, and every rollout it had."""
    from modelyard.adapters.rollout_actions import Decided

    stores = _stores(name)
    found = stores.rollouts.current(name)
    if found is None:
        typer.echo(f"{name} has no open rollout")
    else:
        typer.echo(_describe(found))
        verdict = Decided.from_dict(found.evidence)
        if verdict is None:
            typer.echo(f"  no verdict yet (modelyard rollout evaluate {name})")
        else:
            typer.echo(f"  last verdict {verdict.evaluated_at} by {verdict.by}: {verdict.summary}")
            for key, value in sorted(verdict.statistics.items()):
                typer.echo(f"    {key:32s} {value:.4g}")
    _history(stores.rollouts.history(name))


def _describe(found: Rollout) -> str:
    weight = f", {found.weight:.0%} of requests" if found.strategy == "canary" else ""
    return (
        f"rollout #{found.id} of {found.model}: {found.strategy}{weight}, version "
        f"{found.challenger} (challenger) against version {found.champion} (production), "
        f"since {found.started_at.isoformat(timespec='seconds')} by {found.started_by}"
    )


def _history(rollouts: list[Rollout]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False, title="rollouts")
    for column in ("#", "strategy", "versions", "state", "started (UTC)", "ended", "why"):
        table.add_column(column, overflow="fold", no_wrap=column != "why")
    for past in rollouts:
        table.add_row(
            str(past.id),
            past.strategy,
            f"{past.challenger} vs {past.champion or '—'}",
            past.state.value,
            past.started_at.strftime("%Y-%m-%d %H:%M"),
            past.ended_at.strftime("%Y-%m-%d %H:%M") if past.ended_at else "—",
            past.reason or "—",
        )
    Console().print(table)


@app.command("evaluate")
def rollout_evaluate(
    name: str,
    params: Annotated[Path, typer.Option(help="The params file (its rollout: policy).")] = Path(
        "params.yaml"
    ),
) -> None:
    """Run the rollout flow now: judge the open rollout on live evidence and act on it."""
    from modelyard.config import load_params

    load_params(params)
    _open(_stores(name), name)
    from flows.rollout import rollout as rollout_flow

    done = rollout_flow(params_path=str(params), model=name)
    outcome = "nothing" if done.outcome is None else done.outcome.value
    typer.echo(f"{name}: {outcome}: {done.summary}")
    if done.production is not None:
        typer.echo(f"  {name}@production is version {done.production}")


@app.command("promote")
def rollout_promote(
    name: str,
    reason: Annotated[str, _REASON],
    as_: Annotated[str | None, _AS] = None,
) -> None:
    """Promote the challenger now, whatever the evidence says (a person's override, audited)."""
    from modelyard.rollout import Outcome

    _ended_line(_end_by_hand(name, Outcome.PROMOTE, reason, as_))


@app.command("abort")
def rollout_abort(
    name: str,
    reason: Annotated[str, _REASON],
    as_: Annotated[str | None, _AS] = None,
) -> None:
    """Abort the rollout now: the challenger alias is removed, production stays (audited)."""
    from modelyard.rollout import Outcome

    _ended_line(_end_by_hand(name, Outcome.ABORT, reason, as_))


def _end_by_hand(name: str, outcome: Outcome, reason: str, who: str | None) -> Ended:
    from modelyard.adapters.rollout_actions import Decided, conclude

    if not reason.strip():
        raise Refused("--reason must say why: the audit trail records it")
    actor = f"user:{who}" if who else current_user()
    stores = _stores(name)
    found = _open(stores, name)
    return conclude(stores, found.id, Decided.by_hand(outcome, reason.strip(), actor), actor, True)


def _ended_line(ended: Ended) -> None:
    found = ended.rollout
    if ended.already:
        typer.echo(f"rollout #{found.id} had already ended: {found.state.value} ({found.reason})")
        return
    typer.echo(
        f"rollout #{found.id} of {found.model} {found.state.value}: "
        f"{found.model}@production is version {ended.production}; the challenger alias is "
        f"removed (audited: modelyard models history {found.model})"
    )
