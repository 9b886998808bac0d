"""The last step of a retrain: the servers that follow `production` must report the new version
and answer smoke requests with it; otherwise `production` goes back (audited) and the flow
fails with the reason."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from modelyard.adapters.deployment import ServerCheck, check_server, reload_servers, roll_back
from modelyard.orchestration.runs import artifact_key
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.store.audit import AuditLog

__all__ = ["ServerCheck", "reload_servers", "roll_back_production", "verify_deployment"]


@task(name="verify-deployment", cache_policy=NO_CACHE)
def verify_deployment(
    servers: list[str],
    version: str,
    texts: list[str],
    labels: list[str],
    timeout_s: float,
    token: str | None,
    model: str = "model",
) -> list[ServerCheck]:
    checks = [check_server(s, version, texts, labels, timeout_s, token) for s in servers]
    lines = ["| server | result |", "|---|---|"] + [
        f"| {c.server} | {'ok' if c.ok else '**FAIL**'}: {c.detail} |" for c in checks
    ]
    create_markdown_artifact(
        key=artifact_key("deployment", model),
        markdown="\n".join(lines),
        description=f"Servers following production, version {version}",
    )
    logger = get_run_logger()
    for check in checks:
        (logger.info if check.ok else logger.error)("%s: %s", check.server, check.detail)
    return checks


@task(name="roll-back-production", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def roll_back_production(
    registry: MlflowRegistry, audit: AuditLog, name: str, version: str, actor: str, reason: str
) -> str | None:
    """Put `production` back where it was before `version` (audited); None when it has nothing
    to go back to or someone has moved it since."""
    return roll_back(registry, audit, name, version, actor, reason)
