"""`modelyard doctor`: every configured endpoint checked, with what is wrong and the fix."""

from __future__ import annotations

import typer


def doctor() -> None:
    """Check every configured endpoint and say what is wrong and how to fix it."""
    from rich.console import Console
    from rich.table import Table

    from modelyard.orchestration.doctor import run_checks

    checks = run_checks()
    table = Table(show_edge=False)
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        table.add_row(
            check.name,
            "[green]ok[/]" if check.ok else "[red]FAIL[/]",
            check.detail,
            check.fix or "",
        )
    Console().print(table)
    if not all(check.ok for check in checks):
        raise typer.Exit(1)
