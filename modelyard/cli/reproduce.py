"""`modelyard models reproduce NAME VERSION`: rebuild a version from its lineage alone (its
commit, its dataset by md5, its params, its split membership) in a scratch work tree, register
nothing, and say whether the rebuilt model's test figures are identical to the recorded ones
(`modelyard.adapters.rebuild`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli._common import Refused, registry

NOTHING_REBUILT = "Nothing was trained or registered."


def models_reproduce(
    name: str,
    version: str,
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep",
            help="Make the scratch work tree here (an empty or new directory) and keep it, with "
            "its build/ (prepared split, model, metrics.json); `git worktree remove` it after.",
        ),
    ] = None,
    repo: Annotated[
        Path,
        typer.Option(help="The project's git repository, which holds the version's commit."),
    ] = Path("."),
) -> None:
    """Rebuild a version from its lineage in a scratch work tree (its git commit — a `-dirty`
    one is refused —, its dataset by md5 through DVC, the params its run recorded, the split
    membership it recorded — one that does not match its split_md5 is refused), split, train
    and evaluate it with that commit's code, register nothing, and compare its test figures
    with the recorded ones: identical (within 1e-6), or different with every delta and
    environment difference. Exit 0 identical, 1 different or refused."""
    from mlflow.exceptions import MlflowException

    from modelyard.adapters.rebuild import RebuildFailed, reproduce
    from modelyard.config import Settings
    from modelyard.evaluation.rebuild import RebuildRefused

    settings = Settings()
    typer.echo(
        f"{name} version {version}: rebuilding from its lineage (trains it again)…", err=True
    )
    try:
        done = reproduce(registry(settings), name, version, repo, settings.dataset_cache(), keep)
    except MlflowException:
        raise Refused(f"{name} has no version {version}") from None
    except RebuildRefused as error:
        raise Refused(f"{error}\n{NOTHING_REBUILT}") from None
    except RebuildFailed as error:
        raise Refused(str(error)) from None
    typer.echo(f"{name} version {version}: rebuilt from commit {done.commit}")
    typer.echo(f"  dataset: {done.dataset}")
    typer.echo(f"  split: {done.split}")
    for line in done.verdict.lines():
        typer.echo(line)
    if done.kept is not None:
        typer.echo(f"scratch work tree kept at {done.kept}")
    if not done.verdict.identical:
        raise typer.Exit(1)
