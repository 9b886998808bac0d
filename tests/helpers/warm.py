"""`python -m tests.helpers.warm`: import what the suite's processes import, once, so that Python
compiles and caches its bytecode here (`make test` runs it beside lint and the docs build).

`make install` does not byte-compile the ~29,000 installed modules (pip does that one at a time);
a run imports a few thousand, and without this the first of them are compiled by every xdist
worker, fork server and subprocess that starts at the same moment, each doing the same work.
Importing writes nothing else: every module of the project imports without side effects
(tests/unit/test_imports.py).
"""

from __future__ import annotations

import importlib
import pkgutil

from tests.helpers.forked import PRELOAD

# Imported by servers and commands the tests start, beyond the fork server's own.
OTHERS = (
    "prefect",
    "prefect.server.api.server",
    "prefect.testing.utilities",
    "mlflow.server",
    "dvc.repo",
    "dvc.cli",
    "onnxruntime",
    "onnx",
    "sklearn.linear_model",
    "boto3",
    "moto.server",
    "uvicorn",
    "fastapi",
    "schemathesis",
    "hypothesis",
    "xdist",
)


def main() -> None:
    for name in (*PRELOAD, *OTHERS):
        importlib.import_module(name)
    for package in ("modelyard", "tasks", "flows"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            # The pyfunc entry point is loaded by MLflow only (its import registers the model).
            if info.name != "modelyard.registry.pyfunc_entry":
                importlib.import_module(info.name)


if __name__ == "__main__":
    main()
