"""`modelyard data …`: the default dataset, dataset versions (validated, DVC-tracked, pushed),
and the next version made from the model's labelled feedback."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli._common import (
    NOTHING_CHANGED,
    SET_HELP,
    Typer,
    load_params_with,
    noting,
    parse_overrides,
    parse_time,
    registry,
)

if TYPE_CHECKING:
    from modelyard.adapters.catalog import Catalog, Entry

app = Typer(help="Datasets: the default dataset, DVC versions.", no_args_is_help=True)


@app.command("prepare")
def data_prepare(
    params: Annotated[Path, typer.Option(help="The params file.")] = Path("params.yaml"),
) -> None:
    """Make the default dataset present, in DVC's cache and in the DVC remote, and put the
    dataset versions this checkout pins into the workspace (from DVC's cache or remote)."""
    from modelyard.adapters.default_dataset import (
        materialise_dataset_versions,
        prepare_default_dataset,
    )
    from modelyard.config import load_params

    path = load_params(params).data.path
    how = prepare_default_dataset(Path.cwd(), path)
    typer.echo(f"{path}: {how}; tracked by DVC and pushed to the default remote")
    versions = materialise_dataset_versions(Path.cwd())
    if versions.restored:
        typer.echo(f"dataset versions restored from DVC: {', '.join(versions.restored)}")
    if versions.unavailable:
        typer.echo(
            f"dataset versions in neither DVC's cache nor its remote (`dvc status` lists "
            f"them as deleted until `dvc pull` can reach a remote that has them): "
            f"{', '.join(versions.unavailable)}",
            err=True,
        )


@app.command("add")
def data_add(
    path: Annotated[Path, typer.Argument(help="CSV, TSV, Parquet or JSON Lines file.")],
    name: Annotated[
        str | None, typer.Option(help="Dataset name (default: the file's stem).")
    ] = None,
    params: Annotated[
        Path, typer.Option(help="The params file (columns, labels, thresholds).")
    ] = Path("params.yaml"),
    push: Annotated[bool, typer.Option(help="Push to the default DVC remote.")] = True,
    set_: Annotated[list[str], typer.Option("--set", help=SET_HELP)] = [],  # noqa: B006 - typer's way to declare a repeatable option; never mutated
) -> None:
    """Validate a file and add it as the next version of a dataset (DVC-tracked, pushed).
    Its columns and labels are the params' (`--set data.text_column=review` and so on)."""
    loaded = load_params_with(params, parse_overrides(set_))
    from modelyard.adapters import datasets as sources

    with noting(NOTHING_CHANGED):
        added = sources.add(sources.project_root(), path, name or path.stem, loaded, push=push)
    entry = added.entry
    if not added.created:
        typer.echo(f"{path} is already {entry.ref} (md5 {entry.md5}): nothing to add")
        return
    same = f"; the same bytes as {', '.join(added.same_bytes)}" if added.same_bytes else ""
    typer.echo(
        f"added {entry.ref}: {entry.path}, md5 {entry.md5}, {entry.rows} rows, classes "
        f"{entry.classes}{same}"
    )
    if added.report is not None:
        typer.echo(f"validation: {added.report.summary()}")
    typer.echo(
        f"pushed to the DVC remote: {'yes' if push else 'no (--no-push)'}. Pin it in git: "
        f"git add {entry.path}.dvc {Path(entry.path).parent}/.gitignore && git commit"
    )
    _announce(entry)


@app.command("from-feedback")
def data_from_feedback(
    base: Annotated[str, typer.Option(help="The training data: a file or NAME@VERSION.")],
    name: Annotated[str, typer.Option(help="Dataset name of the new version.")],
    params: Annotated[Path, typer.Option(help="The params file (model.name, columns).")] = Path(
        "params.yaml"
    ),
    since: Annotated[str | None, typer.Option(help="Only feedback from this ISO time on.")] = None,
    key: Annotated[
        list[str],
        typer.Option(
            help="Only feedback sent with this API key (its id, `modelyard keys list`); repeat "
            "for several. Default: all feedback."
        ),
    ] = [],  # noqa: B006 - typer's way to declare a repeatable option; never mutated
    push: Annotated[bool, typer.Option(help="Push to the default DVC remote.")] = True,
    set_: Annotated[list[str], typer.Option("--set", help=SET_HELP)] = [],  # noqa: B006 - typer's way to declare a repeatable option; never mutated
) -> None:
    """Training data + the model's labelled feedback → the next dataset version (validated,
    de-duplicated, the feedback's label winning), announced to the retrain trigger."""
    from modelyard.adapters import datasets as sources
    from modelyard.adapters.feedback import add_feedback_version
    from modelyard.config import Settings

    loaded = load_params_with(params, parse_overrides(set_))
    when = None if since is None else parse_time(since, f"--since {since!r} is not an ISO time")
    settings = Settings()
    with noting(NOTHING_CHANGED):
        added, feedback = add_feedback_version(
            base,
            name,
            loaded,
            settings.resolved_database_url(),
            sources.project_root(),
            settings.dataset_cache(),
            when,
            push,
            tuple(key),
        )
    entry = added.entry
    typer.echo(
        f"{feedback.labelled} labelled predictions ({feedback.without_text} without text) "
        f"merged into {base}"
    )
    if not added.created:
        typer.echo(f"the result is already {entry.ref} (md5 {entry.md5}): nothing to add")
        return
    typer.echo(
        f"added {entry.ref}: {entry.path}, md5 {entry.md5}, {entry.rows} rows, classes "
        f"{entry.classes}"
    )
    _announce(entry)


def _announce(entry: Entry) -> None:
    """Send the dataset event, then say which retrain it started (or why none)."""
    from modelyard.cli._follow import report_triggered_run
    from modelyard.orchestration.events import DATASET_ADDED, emit_dataset_added

    if not emit_dataset_added(entry.ref, entry.md5):
        typer.echo(
            f"no event sent: no Prefect server (PREFECT_API_URL) to announce {entry.ref} "
            f"to; retrain on it with: modelyard retrain --data {entry.ref}"
        )
        return
    typer.echo(f"event {DATASET_ADDED} sent for {entry.ref}")
    report_triggered_run(entry.ref)


@app.command("list")
def data_list(
    repo: Annotated[str | None, typer.Option(help="Another repository (path or git URL).")] = None,
    rev: Annotated[str | None, typer.Option(help="A git revision of that repository.")] = None,
) -> None:
    """Every dataset version: name@version, md5, rows, classes, when added."""
    from rich.console import Console
    from rich.table import Table

    from modelyard.adapters import datasets as sources
    from modelyard.adapters.catalog import Catalog

    with noting(NOTHING_CHANGED):
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


@app.command("show")
def data_show(
    version: Annotated[str, typer.Argument(help="NAME@VERSION, or an md5 (prefix).")],
    repo: Annotated[str | None, typer.Option(help="Another repository (path or git URL).")] = None,
) -> None:
    """One dataset version: rows, classes, hash, when added, and the models trained on it."""
    from modelyard.adapters import datasets as sources
    from modelyard.adapters.catalog import Catalog

    with noting(NOTHING_CHANGED):
        catalog = Catalog(repo or sources.project_root())
        entry = _find(catalog, version)
        names = [e.ref for e in catalog.entries() if e.md5 == entry.md5]
    models = registry().versions_trained_on(entry.md5)
    typer.echo(
        f"{entry.ref}\n  md5      {entry.md5}\n  path     {entry.path} ({entry.size} bytes)"
        f"\n  rows     {entry.rows}\n  classes  {entry.classes}\n  added    {entry.added}"
        f" from {entry.source}\n  names    {', '.join(names)}"
    )
    if models:
        for model, number, aliases in models:
            tag = f" [{', '.join(aliases)}]" if aliases else ""
            typer.echo(f"  model    {model} version {number}{tag}")
    else:
        typer.echo("  model    none trained on it yet")


def _find(catalog: Catalog, version: str) -> Entry:
    """The entry NAME@VERSION names, or the first whose md5 starts with `version`."""
    from modelyard.adapters.catalog import CatalogError, DataRef

    if "@" in version:
        return catalog.resolve(DataRef.parse(version))[0]
    matches = [e for e in catalog.entries() if e.md5.startswith(version.lower())]
    if not matches:
        raise CatalogError(f"no dataset version has an md5 starting with {version!r}")
    return matches[0]
