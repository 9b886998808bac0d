"""`modelyard …`: the root app, assembled from one module per command group (as Prefect's
`prefect.cli`). Only typer is imported to build it, so `--help` answers at once; each command
imports what it needs when it runs.

Every command runs under one error handler (`_common.handles_errors`, applied by `_common.Typer`)
and after one callback that applies the process defaults (`modelyard.env`).
"""

from __future__ import annotations

from modelyard.cli import (
    data,
    demo,
    deploy,
    doctor,
    explain,
    keys,
    models,
    monitor,
    predict,
    rollout,
    serve,
    stack,
    stage,
    training,
    ui,
)
from modelyard.cli._common import Typer

app = Typer(
    help="ModelYard: version, validate, train, gate, register and promote models.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _defaults() -> None:
    # Before any command: offline, no telemetry, quiet progress bars (a value the user exported
    # wins). Here once, so no command can run without them.
    from modelyard.env import apply_defaults

    apply_defaults()


# In the order `modelyard --help` lists them: the commands, then the groups.
app.command()(training.retrain)
app.command()(training.train)
app.command()(serve.serve)
app.command()(predict.predict)
app.command()(explain.explain)
app.command()(deploy.deploy)
app.command()(doctor.doctor)
app.command()(monitor.monitor)
app.command("demo-traffic")(demo.demo_traffic)
app.command()(ui.ui)
app.add_typer(data.app, name="data")
app.add_typer(keys.app, name="keys")
app.add_typer(models.app, name="models")
app.add_typer(rollout.app, name="rollout")
app.add_typer(stack.app, name="stack")
app.add_typer(stage.app, name="stage")


def main() -> None:
    app()
