"""infra/ and prefect.yaml are parsed and checked against schemas of what their tools require
(no container engine or cluster runs here), plus the cross-references a typo would break: a
probe's port, a selector, an HPA's target, a compose dependency, a deployment's entrypoint."""

from __future__ import annotations

import ast
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
STR_LIST = {"type": "array", "items": {"type": "string"}, "minItems": 1}

COMPOSE = {
    "type": "object",
    "required": ["services"],
    "properties": {
        "services": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {"type": "string"},
                    "command": STR_LIST,
                    "ports": {
                        "type": "array",
                        "items": {"type": "string", "pattern": r"^127\.0\.0\.1:\d+:\d+$"},
                    },
                    "environment": {
                        "type": "object",
                        "additionalProperties": {"type": ["string", "object"]},
                    },
                    "depends_on": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "required": ["condition"],
                            "properties": {
                                "condition": {
                                    "enum": [
                                        "service_started",
                                        "service_healthy",
                                        "service_completed_successfully",
                                    ]
                                }
                            },
                        },
                    },
                    "healthcheck": {
                        "type": "object",
                        "required": ["test"],
                        "properties": {"test": STR_LIST},
                    },
                    "volumes": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}
CONTAINER = {
    "type": "object",
    "required": ["name", "image"],
    "properties": {
        "name": {"type": "string"},
        "image": {"type": "string"},
        "args": STR_LIST,
        "ports": {"type": "array", "items": {"type": "object", "required": ["containerPort"]}},
        "resources": {
            "type": "object",
            "properties": {"requests": {"type": "object"}, "limits": {"type": "object"}},
        },
    },
}
K8S = {
    "Deployment": {
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["selector", "template"],
                "properties": {
                    "replicas": {"type": "integer", "minimum": 1},
                    "selector": {"type": "object", "required": ["matchLabels"]},
                    "template": {
                        "type": "object",
                        "required": ["metadata", "spec"],
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["containers"],
                                "properties": {
                                    "containers": {
                                        "type": "array",
                                        "minItems": 1,
                                        "items": CONTAINER,
                                    }
                                },
                            }
                        },
                    },
                },
            }
        },
    },
    "Service": {
        "required": ["spec"],
        "properties": {"spec": {"type": "object", "required": ["selector", "ports"]}},
    },
    "HorizontalPodAutoscaler": {
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "minReplicas", "maxReplicas", "metrics"],
            }
        },
    },
    "ServiceAccount": {},
    "Namespace": {},
    "ConfigMap": {"required": ["data"]},
    "Role": {"required": ["rules"]},
    "RoleBinding": {"required": ["subjects", "roleRef"]},
}
API_VERSIONS = {
    "Deployment": "apps/v1",
    "Service": "v1",
    "ServiceAccount": "v1",
    "Namespace": "v1",
    "ConfigMap": "v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "Role": "rbac.authorization.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
}


def _k8s_objects() -> list[dict]:
    return [
        doc
        for path in sorted((REPO / "infra" / "k8s").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def test_compose_file_is_valid_and_consistent():
    compose = yaml.safe_load((REPO / "infra" / "compose.yaml").read_text())
    jsonschema.validate(compose, COMPOSE)
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if service["depends_on"][dependency]["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], dependency
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith("./") or source in compose["volumes"], volume
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert {"postgres", "mlflow", "prefect", "worker", "model"} <= set(services)


def test_kubernetes_manifests_are_valid_and_consistent():
    objects = _k8s_objects()
    by_kind: dict[str, dict[str, dict]] = {}
    for obj in objects:
        jsonschema.validate(obj, {"type": "object", "required": ["apiVersion", "kind", "metadata"]})
        kind = obj["kind"]
        assert obj["apiVersion"] == API_VERSIONS[kind], kind
        jsonschema.validate(obj, {"type": "object", **K8S[kind]})
        if kind != "Namespace":
            assert obj["metadata"]["namespace"] == "modelyard", obj["metadata"]["name"]
        by_kind.setdefault(kind, {})[obj["metadata"]["name"]] = obj

    for name, deployment in by_kind["Deployment"].items():
        spec = deployment["spec"]
        assert (
            spec["selector"]["matchLabels"].items()
            <= spec["template"]["metadata"]["labels"].items()
        ), name
        account = spec["template"]["spec"].get("serviceAccountName")
        assert account is None or account in by_kind["ServiceAccount"]
        for container in spec["template"]["spec"]["containers"]:
            ports = {p.get("name") for p in container.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                if probe in container:
                    assert container[probe]["httpGet"]["port"] in ports, (name, probe)
    server = by_kind["Deployment"]["modelyard-model-server"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert server["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/health"
    for service in by_kind["Service"].values():
        assert any(
            service["spec"]["selector"].items()
            <= d["spec"]["template"]["metadata"]["labels"].items()
            for d in by_kind["Deployment"].values()
        )
    for hpa in by_kind["HorizontalPodAutoscaler"].values():
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in by_kind["Deployment"]
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    for binding in by_kind["RoleBinding"].values():
        assert binding["roleRef"]["name"] in by_kind["Role"]
    worker = by_kind["Deployment"]["prefect-worker-gpu"]["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert worker["args"][-2:] == ["--type", "kubernetes"] and "gpu" in worker["args"]


@pytest.mark.parametrize(
    "deployment",
    yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"],
    ids=lambda d: d["name"],
)
def test_prefect_deployments_point_at_real_flows(deployment):
    path, function = deployment["entrypoint"].split(":")
    tree = ast.parse((REPO / path).read_text())
    flows = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any("flow" in ast.unparse(d) for d in node.decorator_list)
    }
    assert function in flows, f"{path} has no flow {function}"
    assert deployment["work_pool"]["name"] in {"cpu", "gpu"}
    if deployment["work_pool"]["name"] == "gpu":
        variables = deployment["work_pool"]["job_variables"]
        assert variables["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert variables["node_selector"]


@pytest.mark.parametrize(
    "deployment",
    yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"],
    ids=lambda d: d["name"],
)
def test_prefect_triggers_schedules_and_limits_are_what_prefect_accepts(deployment):
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.client.schemas.schedules import construct_schedule
    from prefect.events import DeploymentEventTrigger

    for trigger in deployment.get("triggers", []):
        assert trigger["type"] == "event"
        DeploymentEventTrigger(**{k: v for k, v in trigger.items() if k != "type"})
    for schedule in deployment.get("schedules", []):
        construct_schedule(cron=schedule["cron"], timezone=schedule["timezone"])
    if "concurrency_limit" in deployment:
        ConcurrencyLimitConfig(**deployment["concurrency_limit"])
