"""The CLI's one error handler and one defaults callback: known errors end a command with one
line and their exit code, wherever they are raised; anything else keeps its traceback."""

from __future__ import annotations

import os

import pytest
import typer
from typer.testing import CliRunner

from modelyard.cli._common import NOTHING_CHANGED, Refused, Typer, exit_code, noting


def run(command, *args: str):
    app = Typer()
    app.command()(command)
    app.command("other")(lambda: None)  # two commands: the first is a subcommand, as in the CLI
    return CliRunner().invoke(app, [command.__name__.replace("_", "-"), *args])


def test_known_errors_are_one_line_with_their_exit_code():
    from modelyard.adapters.catalog import CatalogError
    from modelyard.config import ConfigError

    def bad_params() -> None:
        raise ConfigError("params.yaml: train.epochs must be >= 1")

    def unknown_version() -> None:
        with noting(NOTHING_CHANGED):
            raise CatalogError("reviews@9: no such version")

    result = run(bad_params)
    assert (result.exit_code, result.output) == (
        2,
        "error: params.yaml: train.epochs must be >= 1\n",
    )
    result = run(unknown_version)
    assert result.exit_code == 1
    assert result.output == f"error: reviews@9: no such version\n{NOTHING_CHANGED}\n"


def test_a_refusal_carries_its_own_exit_code_and_keeps_its_brackets():
    def refuse() -> None:
        raise Refused("[not markup] refused", code=2)

    result = run(refuse)
    assert (result.exit_code, result.output) == (2, "error: [not markup] refused\n")


def test_anything_else_keeps_its_traceback():
    def bug() -> None:
        with noting(NOTHING_CHANGED):
            raise KeyError("oops")

    result = run(bug)
    assert result.exit_code == 1 and isinstance(result.exception, KeyError)
    assert exit_code(result.exception) is None and not hasattr(
        result.exception, "_modelyard_consequence"
    )


def test_typer_exits_and_usage_errors_pass_through():
    def exits(flag: bool = False) -> None:
        raise typer.Exit(3)

    assert run(exits).exit_code == 3
    assert run(exits, "--no-such-option").exit_code == 2


@pytest.mark.parametrize("name", ["HF_HUB_OFFLINE", "DO_NOT_TRACK"])
def test_the_root_callback_applies_the_process_defaults(monkeypatch, name):
    from modelyard.cli import app

    monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["stack", "down", "--root", "no-stack-here"])
    assert result.exit_code == 0, result.output
    assert name in os.environ
