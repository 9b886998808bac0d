"""A local S3-compatible server for tests: moto's server mode in a process of its own on a
loopback port, with a bucket made, and the environment a client (boto3, MLflow's server, DVC)
needs to use it. Nothing leaves the machine: the endpoint is 127.0.0.1 and the credentials are
moto's dummies."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers.servers import free_port
from tests.helpers.wait import wait_until


@dataclass(frozen=True)
class LocalS3:
    endpoint: str
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        """What boto3 (and so MLflow's S3 artifact store, DVC's s3fs with endpointurl) reads."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def keys(self, prefix: str = "") -> list[str]:
        """Every object's key under `prefix` in the bucket."""
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@contextmanager
def local_s3(log: Path, bucket: str = "modelyard") -> Iterator[LocalS3]:
    """moto's S3 server (`moto_server`) started for the caller, `bucket` created in it; stopped
    on exit."""
    import httpx

    port = free_port()
    server = Path(sys.executable).parent / "moto_server"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(server), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    endpoint = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{endpoint}/moto-api/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(answers, f"moto_server on {endpoint}", 60, 0.2, lambda: process.poll() is None)
        s3 = LocalS3(endpoint, bucket)
        s3.client().create_bucket(Bucket=bucket)
        yield s3
    finally:
        process.terminate()
        process.wait(timeout=30)
