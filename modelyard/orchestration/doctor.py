"""`modelyard doctor`: every endpoint the settings point at, checked the way the platform uses
it, each failure with what to do about it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelyard.config import Settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


def _guard(name: str, probe: Callable[[], Check], fix: str) -> Check:
    try:
        return probe()
    except Exception as error:  # noqa: BLE001 - the point is to report it
        return Check(
            name, False, f"{type(error).__name__}: {str(error).splitlines()[0][:200]}", fix
        )


def check_params(path: Path = Path("params.yaml")) -> Check:
    from modelyard.config import load_params

    def probe() -> Check:
        params = load_params(path)
        return Check(
            "params", True, f"{path}: model {params.model.name}, backbone {params.model.backbone}"
        )

    return _guard("params", probe, f"fix the keys named above in {path}")


def check_tracking(uri: str) -> Check:
    def probe() -> Check:
        if uri.startswith("http"):
            import httpx

            httpx.get(f"{uri.rstrip('/')}/health", timeout=5).raise_for_status()
            version = httpx.get(f"{uri.rstrip('/')}/version", timeout=5).text.strip()
            return Check("mlflow", True, f"server {uri}, MLflow {version}")
        if uri.startswith("sqlite:///"):
            path = Path(uri.removeprefix("sqlite:///"))
            if not path.exists():  # looking must not create it
                return Check("mlflow", True, f"embedded store {uri} (created on the first run)")
        from modelyard.registry.mlflow_registry import open_client

        open_client(uri)
        return Check("mlflow", True, f"embedded store {uri}")

    return _guard(
        "mlflow",
        probe,
        "start the tracking server (`make up`) or unset "
        "MLFLOW_TRACKING_URI / MODELYARD_TRACKING_URI",
    )


def check_database(url: str) -> Check:
    def probe() -> Check:
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory
        from sqlalchemy import create_engine

        from modelyard.store.db import alembic_config

        script = ScriptDirectory.from_config(alembic_config(url))
        head = script.get_current_head()
        safe = url.split("@")[-1] if "@" in url else url
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
            return Check("database", True, f"{safe} (created and migrated on first use)")
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                current = MigrationContext.configure(connection).get_current_revision()
        finally:
            engine.dispose()
        known = {revision.revision for revision in script.walk_revisions()}
        if current is not None and current not in known:
            return Check(
                "database",
                False,
                f"{safe}: schema at {current}, newer than this code (head {head})",
                "upgrade ModelYard on this machine",
            )
        if current != head:
            return Check(
                "database",
                True,
                f"{safe}: schema at {current or 'nothing'}, migrated to {head} on first use",
            )
        return Check("database", True, f"{safe}: migrations at head ({head})")

    return _guard("database", probe, "check MODELYARD_DATABASE_URL and that the server runs")


def check_prefect(api_url: str | None) -> Check:
    if not api_url:
        return Check(
            "prefect",
            True,
            "no PREFECT_API_URL: flows run on an ephemeral API "
            "(embedded default; schedules and approvals need a server)",
        )

    def probe() -> Check:
        import httpx

        httpx.get(f"{api_url.rstrip('/')}/health", timeout=5).raise_for_status()
        version = httpx.get(f"{api_url.rstrip('/')}/admin/version", timeout=5).json()
        return Check("prefect", True, f"server {api_url}, Prefect {version}")

    return _guard("prefect", probe, "start the server (`make up`) or unset PREFECT_API_URL")


def check_dvc_remote(root: Path | None) -> Check:
    if root is None:
        return Check("dvc remote", True, "not in a DVC project: nothing to check")

    def probe() -> Check:
        from dvc.repo import Repo

        with Repo(str(root)) as repo:
            config = repo.config
            default = config["core"].get("remote")
            if not default:
                return Check("dvc remote", False, "no default remote", "dvc remote add -d NAME URL")
            remote = dict(config["remote"][default])
            url = remote["url"]
        if url.startswith("s3://"):
            return _bucket_check(
                "dvc remote",
                url,
                S3Access(
                    remote.get("endpointurl"),
                    remote.get("access_key_id"),
                    remote.get("secret_access_key"),
                    remote.get("region"),
                ),
                f"{default} → ",
                f"`dvc remote modify {default} endpointurl URL` for MinIO and the like; "
                f"credentials in .dvc/config.local or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            )
        if "://" in url and not url.startswith("file://"):
            return Check(
                "dvc remote",
                True,
                f"{default} → {url} (not probed: credentials are the DVC remote's own)",
            )
        path = Path(url.removeprefix("file://"))
        path = path if path.is_absolute() else (root / ".dvc" / path).resolve()
        if not path.exists():
            return Check("dvc remote", True, f"{default} → {path} (created on the first push)")
        import os

        if not os.access(path, os.W_OK):
            return Check(
                "dvc remote",
                False,
                f"{default} → {path} is not writable",
                f"fix the permissions of {path}",
            )
        return Check("dvc remote", True, f"{default} → {path}")

    return _guard("dvc remote", probe, "check `dvc remote list`")


@dataclass(frozen=True)
class S3Access:
    """How to reach an S3-compatible store; None: boto3's own default (AWS, the environment's
    credentials)."""

    endpoint: str | None = None
    key_id: str | None = None
    secret: str | None = None
    region: str | None = None


def _bucket_check(name: str, url: str, access: S3Access, label: str, fix: str) -> Check:
    """Whether the bucket of `url` (s3://BUCKET/PREFIX) exists and can be listed with `access`."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    bucket, prefix = parts.netloc, parts.path.lstrip("/")
    where = f" at {access.endpoint}" if access.endpoint else ""

    def probe() -> Check:
        import boto3
        from botocore.exceptions import ClientError

        client = boto3.client(
            "s3",
            endpoint_url=access.endpoint,
            aws_access_key_id=access.key_id,
            aws_secret_access_key=access.secret,
            region_name=access.region,
        )
        try:
            listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1000)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket":
                return Check(
                    name,
                    False,
                    f"{label}{url}: no bucket {bucket}{where}",
                    f"create it (`aws s3 mb s3://{bucket}`) or fix the URL",
                )
            raise
        count = f"{listed.get('KeyCount', 0)}{'+' if listed.get('IsTruncated') else ''}"
        under = f"under {prefix}" if prefix else "in it"
        return Check(name, True, f"{label}{url}: bucket {bucket}{where}, {count} object(s) {under}")

    return _guard(name, probe, fix)


def check_s3_artifacts(uri: str | None, endpoint: str | None) -> Check | None:
    """The MLflow server's artifact store when it is a bucket (`make up` with
    MODELYARD_STACK_ARTIFACTS=s3://…, MLFLOW_S3_ENDPOINT_URL for MinIO and the like)."""
    if not uri or not uri.startswith("s3://"):
        return None
    return _bucket_check(
        "mlflow artifacts",
        uri,
        S3Access(endpoint),
        "",
        "check MODELYARD_STACK_ARTIFACTS, MLFLOW_S3_ENDPOINT_URL and the AWS credentials",
    )


def check_production_pointers(settings: Settings) -> Check:
    """Every model's production alias is where the audit trail's last move put it; a move made
    outside ModelYard is named (and announced to Prefect where a server is configured)."""
    name = "production pointer"

    def absent(url: str) -> bool:  # looking must not create an embedded store
        return url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists()

    def probe() -> Check:
        from sqlalchemy import create_engine, inspect

        from modelyard.adapters.pointer import pointer
        from modelyard.orchestration.events import emit_registry_tampered
        from modelyard.registry.mlflow_registry import MlflowRegistry
        from modelyard.store.audit import AuditLog

        database_url = settings.resolved_database_url()
        if absent(settings.resolved_tracking_uri()) or absent(database_url):
            return Check(name, True, "no registry or audit trail yet: nothing to compare")
        engine = create_engine(database_url)  # not migrated: looking changes nothing
        if not inspect(engine).has_table("alias_moves"):
            engine.dispose()
            return Check(name, True, "no audit trail yet: nothing to compare")
        registry, audit = MlflowRegistry.from_settings(settings), AuditLog(engine)
        try:
            found = [pointer(registry, audit, model) for model, _, _ in registry.models()]
        finally:
            audit.engine.dispose()
        moved = [check for check in found if check is not None and check.tampered]
        for check in moved:
            emit_registry_tampered(check, "modelyard doctor")
        if moved:
            return Check(
                name,
                False,
                "; ".join(check.sentence for check in moved),
                "an approver accepts it (`modelyard models promote NAME VERSION --reason …`) "
                "or puts it back (`modelyard models rollback NAME`); servers keep serving the "
                "recorded version meanwhile",
            )
        return Check(name, True, f"{len(found)} model(s): production where the audit trail says")

    return _guard(name, probe, "check the registry and the platform database")


def check_gpu() -> Check:
    import torch

    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return Check("gpu", True, f"{len(names)} CUDA device(s): {', '.join(names)}")
    return Check("gpu", True, "none visible: training runs on the CPU")


def run_checks(params: Path = Path("params.yaml")) -> list[Check]:
    from prefect.settings import get_current_settings

    from modelyard.adapters.catalog import CatalogError
    from modelyard.adapters.datasets import project_root
    from modelyard.config import Settings

    settings = Settings()
    try:
        root: Path | None = project_root()
    except CatalogError:
        root = None
    import os

    artifacts = check_s3_artifacts(
        os.environ.get("MODELYARD_STACK_ARTIFACTS"), os.environ.get("MLFLOW_S3_ENDPOINT_URL")
    )
    tracking = check_tracking(settings.resolved_tracking_uri())
    database = check_database(settings.resolved_database_url())
    # Compared only where both stores answered (an unreachable one is named above already).
    pointers = [check_production_pointers(settings)] if tracking.ok and database.ok else []
    return [
        check_params(params),
        tracking,
        *([artifacts] if artifacts else []),
        database,
        check_prefect(get_current_settings().api.url),
        check_dvc_remote(root),
        *pointers,
        check_gpu(),
    ]
