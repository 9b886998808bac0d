"""`modelyard serve`'s flags reach uvicorn and the app: the access log is off unless asked for,
shutdown is graceful, and --require-keys overrides serving.require_keys."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.helpers.paths import REPO


@pytest.mark.parametrize(
    ("flags", "access_log", "require_keys"),
    [([], False, False), (["--access-log", "--require-keys"], True, True)],
)
def test_flags(monkeypatch, flags, access_log, require_keys):
    import uvicorn

    from modelyard.cli import app, serve

    ran: dict = {}
    monkeypatch.setattr(serve, "use_cores", lambda: None)
    monkeypatch.setattr(
        uvicorn, "run", lambda application, **kwargs: ran.update(kwargs, app=application)
    )
    result = CliRunner().invoke(
        app, ["serve", "--params", str(REPO / "params.yaml"), "--port", "8123", *flags]
    )
    assert result.exit_code == 0, result.output
    assert ran["access_log"] is access_log and ran["port"] == 8123
    assert ran["timeout_graceful_shutdown"] == serve.GRACEFUL_SHUTDOWN_S
    assert ran["app"].state.serving.serving.require_keys is require_keys
