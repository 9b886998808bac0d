"""Local servers for tests: a free port, and a real uvicorn server in a thread."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

from tests.helpers.wait import wait_until


def running(pid: int) -> bool:
    """Whether process `pid` exists (a child its parent stopped and reaped is gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def free_port() -> int:
    """A port nothing listens on now (the kernel picks it among the ephemeral ones, so two
    xdist workers asking at the same time get different ones)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """A real uvicorn server for an ASGI app on a free local port, in a thread; `url` once
    started. A context manager: stops the server on exit."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        wait_until(
            lambda: self.server.started,
            "server did not start",
            timeout_s=60,
            alive=self.thread.is_alive,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def stack_config(root: Path, postgres: Any, prefix: str, params: Path, **extra: Any) -> Any:
    """A production-mode stack (`make up`) for a test: its folder, PostgreSQL server and
    database prefix, the params it serves, every port free; `extra` as StackConfig takes it."""
    from modelyard.orchestration.stack import StackConfig

    ports = {f"{name}_port": free_port() for name in ("prefect", "mlflow", "model")}
    return StackConfig(root=root, postgres=postgres, prefix=prefix, params=params, **ports, **extra)
