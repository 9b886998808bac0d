"""`modelyard predict`: batch prediction through the batch-predict flow, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.cli._common import Refused, noting

# The command's longer options, named once here so that its signature stays readable.
_Input = Annotated[
    str,
    typer.Option(
        "--input", help="CSV/TSV/Parquet/JSONL file, or sql:TABLE in the platform database."
    ),
]
_Output = Annotated[
    str,
    typer.Option("--output", help="Where to write (same forms); the suffix picks the format."),
]
_Replace = Annotated[
    bool,
    typer.Option(
        "--replace",
        help="Overwrite an existing output file or table (atomically, once every "
        "row is scored). The platform's own tables are never written.",
    ),
]
_SkipInvalid = Annotated[
    bool,
    typer.Option(
        "--skip-invalid",
        help="Leave out rows whose text is empty or not text (they are "
        "listed; the output has no row for them) instead of "
        "refusing the input.",
    ),
]


def predict(
    input: _Input,
    output: _Output,
    params: Annotated[Path, typer.Option(help="The params file (model.name).")] = Path(
        "params.yaml"
    ),
    alias: Annotated[str, typer.Option(help="The alias to score with.")] = "production",
    version: Annotated[str | None, typer.Option(help="A version instead of the alias.")] = None,
    text_column: Annotated[str | None, typer.Option(help="Default: data.text_column.")] = None,
    chunk_rows: Annotated[int, typer.Option(help="Rows per resumable chunk.", min=1)] = 10000,
    replace: _Replace = False,
    skip_invalid: _SkipInvalid = False,
) -> None:
    """Batch prediction (the batch-predict flow): resumable, one model version per output."""
    import sys

    from modelyard.adapters.batch import check_input, check_output
    from modelyard.config import Settings, load_params

    loaded = load_params(params)
    database = Settings().resolved_database_url()
    # Cheap, and before Prefect or a model: stored tables and files are never clobbered, and bad
    # input is refused in a second, naming its rows, not after a server and a model have started.
    with noting("Nothing was scored or written."):
        check_output(output, database, replace)
        column = text_column or loaded.data.text_column
        check_input(input, database, column, skip_invalid, loaded.data)
    from flows.batch_predict import batch_predict

    try:
        result = batch_predict(
            input=input,
            output=output,
            params_path=str(params),
            alias=alias,
            version=version,
            text_column=text_column,
            chunk_rows=chunk_rows,
            progress=sys.stderr.isatty(),
            replace=replace,
            skip_invalid=skip_invalid,
        )
    except LookupError as error:  # no such alias or version
        raise Refused(str(error)) from None
    _print_result(result, input)


def _print_result(result: dict[str, Any], input: str) -> None:
    resumed = (
        f" ({result['chunks_resumed']} chunks from an interrupted run)"
        if result["chunks_resumed"]
        else ""
    )
    typer.echo(
        f"{result['rows']} rows scored by {result['model']} version {result['version']} "
        f"-> {result['output']}{resumed}"
    )
    skipped = result["skipped"]
    if skipped:
        from modelyard.data.input_check import listed

        typer.echo(
            f"skipped {len(skipped)} row{'s' if len(skipped) > 1 else ''} of {input} "
            f"whose text is empty or not text ({listed(result['skipped_unit'], skipped)})"
            ": the output has no row for them"
        )
