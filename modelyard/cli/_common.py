"""What every command shares: the one error handler (known errors → one line and an exit code),
the registry and audit log built from Settings, the person at the terminal.

Nothing heavy at import time: `modelyard --help` imports this module.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from typer.models import CommandFunctionType

if TYPE_CHECKING:
    from modelyard.config import Params, Settings
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.store.audit import AuditLog

P = ParamSpec("P")
R = TypeVar("R")

NOTHING_CHANGED = "Nothing was added or changed."


class Refused(Exception):
    """A refusal a command words itself: its message, no traceback, exit `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# The errors a command ends with as one line, and their exit codes: bad params are a usage
# error (2), the rest a refusal (1). Named, not imported: an error of a module nobody imported
# cannot have been raised, so matching only against imported modules imports nothing heavy.
KNOWN_ERRORS: tuple[tuple[str, str, int], ...] = (
    ("modelyard.config", "ConfigError", 2),
    ("modelyard.adapters.catalog", "CatalogError", 1),
    ("modelyard.data.dataset", "DatasetError", 1),
    ("modelyard.data.validation", "DataValidationError", 1),
    ("modelyard.adapters.dvc", "DvcError", 1),
    ("modelyard.adapters.batch", "BatchError", 1),
    ("modelyard.adapters.training_input", "TrainingInputError", 1),
    ("modelyard.adapters.manual_moves", "MoveRefused", 1),
    ("modelyard.store.rollouts", "RolloutConflict", 1),
    ("modelyard.orchestration.approval", "ApprovalError", 1),
    # A flow run that failed (refused inputs, a failed deployment): its message says which.
    ("prefect.exceptions", "FailedRun", 1),
)


def exit_code(error: BaseException) -> int | None:
    """The exit code of a known error; None for anything else (a bug keeps its traceback)."""
    if isinstance(error, Refused):
        return error.code
    for module, name, code in KNOWN_ERRORS:
        known = getattr(sys.modules.get(module), name, None)
        if known is not None and isinstance(error, known):
            return code
    return None


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Known errors end the command with `error: <message>` on stderr and their exit code."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except Exception as error:
            code = exit_code(error)
            if code is None:
                raise
            message = str(error)
            consequence = getattr(error, _CONSEQUENCE, None)
            print_error(message if consequence is None else f"{message}\n{consequence}")
            raise typer.Exit(code) from None

    return run


_CONSEQUENCE = "_modelyard_consequence"


@contextmanager
def noting(consequence: str) -> Iterator[None]:
    """A known error raised in the block is reported with `consequence` on a line of its own
    (what did not happen because of it)."""
    try:
        yield
    except Exception as error:
        if exit_code(error) is not None and not hasattr(error, _CONSEQUENCE):
            setattr(error, _CONSEQUENCE, consequence)
        raise


def print_error(message: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[red]error:[/] {escape(message)}")


class Typer(typer.Typer):
    """typer.Typer whose every command runs under `handles_errors` (as Prefect's PrefectTyper
    wraps every command in its exception handling): no command can forget it."""

    def command(
        self, name: str | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        register = super().command(name, **kwargs)

        def decorator(function: CommandFunctionType) -> CommandFunctionType:
            register(handles_errors(function))
            return function

        return decorator


def registry(settings: Settings | None = None) -> MlflowRegistry:
    """The model registry the settings name."""
    from modelyard.config import Settings
    from modelyard.registry.mlflow_registry import MlflowRegistry

    settings = settings or Settings()
    return MlflowRegistry.from_settings(settings)


def registry_and_audit() -> tuple[MlflowRegistry, AuditLog]:
    """The registry and the audit trail of alias moves (its database migrated to head)."""
    from modelyard.config import Settings
    from modelyard.store.audit import AuditLog

    settings = Settings()
    return registry(settings), AuditLog.from_url(settings.resolved_database_url())


def current_user() -> str:
    """Who is at the terminal, as the audit trail names people."""
    import getpass

    try:
        return f"user:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "user:unknown"


def parse_time(value: str, complaint: str) -> datetime:
    """An ISO time (UTC when it names no zone); Refused(complaint) when it is not one."""
    from datetime import UTC

    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise Refused(complaint) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# `--set`, the same in every command that reads params (retrain, data add, data from-feedback),
# and in the same form as DVC's `dvc exp run -S` (docs/guides/data.md#the-same-overrides).
SET_HELP = (
    "Override a param by its dotted key, as `dvc exp run -S` does: --set train.epochs=1 "
    "(repeatable; the value is read as YAML: 3, 1e-4, null, a list in brackets)."
)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` pairs as dotted keys and YAML values. A leading `+` is dropped: DVC's `-S`
    needs it for a key params.yaml leaves out (`+train.max_steps=100`), and every key exists
    in the params tree, so the same strings work with `--set` and with `dvc exp run -S`."""
    import yaml

    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().removeprefix("+")
        if not sep or not key:
            raise typer.BadParameter(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            overrides[key] = yaml.safe_load(value)
        except yaml.YAMLError as problem:
            raise typer.BadParameter(f"--set {pair!r}: the value is not YAML: {problem}") from None
    return overrides


def load_params_with(path: Path, overrides: dict[str, Any]) -> Params:
    """The params file with `overrides` applied, validated as the file is (ConfigError)."""
    from modelyard.config import load_params

    loaded = load_params(path)
    return loaded.updated(overrides) if overrides else loaded
