"""The real schemas infra/ and prefect.yaml are checked against, offline: Kubernetes' OpenAPI
schemas (kubernetes-validate ships them per Kubernetes version), the Compose specification's
JSON schema (check-jsonschema vendors it) and Prefect's own model of prefect.yaml. Each returns
its findings as one line each, naming the file, the object and the field, so a test can show them
all at once and a negative test can check that the field is named."""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

# The oldest Kubernetes the manifests promise to work on, and the newest kubernetes-validate
# ships: an API removed in between (as autoscaling/v2beta2 was in 1.26) fails one of them.
KUBERNETES_VERSIONS = ("1.33", "1.37")
# Where check-jsonschema keeps its copy of compose-spec/compose-spec's schema/compose-spec.json.
COMPOSE_SCHEMA = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty document of a (multi-document) YAML file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _where(path: Any) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) or "(top)"


def kubernetes_errors(obj: dict[str, Any], version: str, source: str = "") -> list[str]:
    """What Kubernetes `version`'s schema (strict: no unknown field) finds wrong in one object."""
    name = f"{source}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{name}: {_where(error.absolute_path)}: {error.message} (Kubernetes {version})"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"{name}: {error.message}"]
    return []


@cache
def _compose_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def compose_errors(document: dict[str, Any], source: str = "") -> list[str]:
    """What the Compose specification's schema finds wrong in a compose file."""
    return [
        f"{source}: {_where(error.absolute_path)}: {error.message}"
        for error in sorted(_compose_validator().iter_errors(document), key=str)
    ]


def prefect_yaml_errors(document: dict[str, Any], source: str = "") -> list[str]:
    """What Prefect's own model of prefect.yaml (`prefect deploy` reads it with this model and
    skips the whole file on an error) and its trigger, schedule and concurrency models find."""
    import pydantic
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.client.schemas.schedules import construct_schedule
    from prefect.events import DeploymentEventTrigger

    def found(error: pydantic.ValidationError, where: str) -> list[str]:
        return [
            f"{source}: {where}{_where(e['loc'])}: {e['msg']}" for e in error.errors() if e["loc"]
        ] or [f"{source}: {where}: {error}"]

    try:
        PrefectYamlModel.model_validate(document)
    except pydantic.ValidationError as error:
        return found(error, "")
    errors: list[str] = []
    for index, deployment in enumerate(document.get("deployments", [])):
        where = f".deployments[{index}]"
        for number, trigger in enumerate(deployment.get("triggers", [])):
            fields = {k: v for k, v in trigger.items() if k != "type"}
            try:
                DeploymentEventTrigger(**fields)
            except pydantic.ValidationError as error:
                errors += found(error, f"{where}.triggers[{number}]")
        for number, schedule in enumerate(deployment.get("schedules", [])):
            try:
                construct_schedule(cron=schedule["cron"], timezone=schedule["timezone"])
            except (ValueError, pydantic.ValidationError) as error:
                errors.append(f"{source}: {where}.schedules[{number}]: {error}")
        if isinstance(deployment.get("concurrency_limit"), dict):
            try:
                ConcurrencyLimitConfig(**deployment["concurrency_limit"])
            except pydantic.ValidationError as error:
                errors += found(error, f"{where}.concurrency_limit")
    return errors


def make_image_tags(repo: Path, target: str) -> list[str]:
    """The tags `make TARGET` would give the images it builds (a dry run: nothing is built),
    with the Makefile's defaults (IMAGE, VERSION, DOCKER unset in the environment)."""
    env = {k: v for k, v in os.environ.items() if k not in {"IMAGE", "VERSION", "DOCKER"}}
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", target],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return re.findall(r"--tag (\S+)", out)


def compose_default(reference: str) -> str:
    """`${VAR:-default}` -> default (what Compose runs with VAR unset); anything else as is."""
    match = re.fullmatch(r"\$\{\w+:-([^}]+)\}", reference)
    return match.group(1) if match else reference
