"""`modelyard keys …`: the model server's API keys, in the platform database."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from modelyard.cli._common import Refused, Typer, current_user

app = Typer(
    help="API keys of the model server (sent as `Authorization: Bearer <key>`).",
    no_args_is_help=True,
)


class ScopeChoice(StrEnum):
    predict = "predict"
    feedback = "feedback"
    admin = "admin"


def _keys() -> Any:
    from modelyard.config import Settings
    from modelyard.store.api_keys import ApiKeys
    from modelyard.store.db import engine_for

    return ApiKeys(engine_for(Settings().resolved_database_url()))


@app.command("create")
def keys_create(
    scope: Annotated[
        list[ScopeChoice],
        typer.Option(
            help="What it may do: predict (/predict, /explain), feedback (/feedback), admin "
            "(/admin/…); repeat for several."
        ),
    ],
    name: Annotated[
        str | None, typer.Option(help="Who or what uses it, for `keys list` (default: you).")
    ] = None,
) -> None:
    """Make a key and print it once: only its hash is kept."""
    actor = current_user()
    try:
        record, token = _keys().create(name or actor, {s.value for s in scope}, actor)
    except ValueError as problem:
        raise Refused(str(problem), 2) from problem
    typer.echo(
        f"created API key {record.id} ({record.name}), scopes {','.join(sorted(record.scopes))}"
    )
    typer.echo("the key (shown this once; send it as `Authorization: Bearer <key>`):")
    typer.echo(token)


@app.command("list")
def keys_list() -> None:
    """Every key: id, name, scopes, who made it and when, revoked or not (never the secret)."""
    from rich.console import Console
    from rich.table import Table

    records = _keys().list()
    if not records:
        typer.echo("no API keys (modelyard keys create --name NAME --scope predict)")
        return
    table = Table(show_edge=False)
    for column in ("id", "name", "scopes", "created", "by", "revoked"):
        table.add_column(column)
    for record in records:
        table.add_row(
            record.id,
            record.name,
            ",".join(sorted(record.scopes)),
            record.created_at.isoformat(timespec="seconds"),
            record.created_by,
            record.revoked_at.isoformat(timespec="seconds") if record.revoked_at else "",
        )
    Console(width=160).print(table)


@app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (keys list).")]) -> None:
    """Revoke a key: servers refuse it within serving.key_cache_s seconds."""
    try:
        record = _keys().revoke(key_id)
    except LookupError as problem:
        raise Refused(str(problem)) from problem
    assert record.revoked_at is not None
    typer.echo(f"revoked API key {record.id} ({record.name}) at {record.revoked_at.isoformat()}")
