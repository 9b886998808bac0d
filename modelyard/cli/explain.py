"""`modelyard explain`: why the model decided, word by word (integrated gradients)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli._common import Refused, registry_and_audit

if TYPE_CHECKING:
    from modelyard.explain import Explanation


def explain(
    text: Annotated[str, typer.Argument(help="The text to explain.")],
    version: Annotated[
        str | None, typer.Option(help="A model version (default: the alias's).")
    ] = None,
    alias: Annotated[str, typer.Option(help="The alias to explain.")] = "production",
    label: Annotated[
        str | None, typer.Option(help="The class to explain (default: the predicted one).")
    ] = None,
    params: Annotated[Path, typer.Option(help="The params file (model.name, explain).")] = Path(
        "params.yaml"
    ),
    html: Annotated[Path | None, typer.Option(help="Also write an HTML snippet here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """Why the model decided: each word's share of the log-odds of the predicted class
    (integrated gradients), coloured in the terminal: green for, red against."""
    import json

    from mlflow.exceptions import MlflowException

    from modelyard.config import load_params
    from modelyard.explain import Explainer, to_html

    loaded = load_params(params)
    registry, _ = registry_and_audit()
    name = loaded.model.name
    try:
        classifier = registry.load_classifier(name, alias=alias, version=version)
    except MlflowException:
        raise Refused(
            f"{name} has no {'version ' + version if version else 'alias @' + alias}"
        ) from None
    try:
        explanation = Explainer(classifier, loaded.explain.n_steps).explain(text, label)
    except ValueError as error:
        raise Refused(str(error)) from None
    if html is not None:
        html.write_text(to_html(explanation), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(explanation.to_dict(), indent=2))
    else:
        _print(f"{name} {f'version {version}' if version else f'@{alias}'}", explanation)


def _print(which: str, explanation: Explanation) -> None:
    """The decision, the text coloured by attribution, the completeness check, the five
    strongest words."""
    from rich.console import Console
    from rich.markup import escape

    from modelyard.explain import COLOUR_SCALE, to_rich_text

    console = Console(highlight=False)
    console.print(f"{which}: [bold]{escape(explanation.heading())}[/bold]")
    console.print(to_rich_text(explanation))
    console.print(
        f"[dim]{escape(explanation.completeness())}; green: towards {escape(explanation.label)},"
        f" red: away; full colour at ±{COLOUR_SCALE:g}[/dim]"
    )
    for token in explanation.ranked()[:5]:
        kind = "" if token.kind == "word" else f"  ({token.kind})"
        console.print(f"  {token.attribution:+.4f}  {escape(token.token)}{kind}")
    if explanation.truncated:
        console.print(
            "[yellow]the text is longer than the model reads; the rest was not scored[/yellow]"
        )
