# The two commands of the README: `make run` and `make test`. Both create the virtual environment
# if there is none and install the project into it, every package at the version
# requirements.lock pins (torch the CPU build constraints.txt names).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.modelyard-installed
# Three xdist workers on this project's two-core CI machine: many tests spend part of their time
# waiting on servers and subprocesses, so a third worker fills the gaps (measured on clean
# clones: pytest 737 s on -n 3, 774 s on -n 2). PYTEST_WORKERS=auto elsewhere, 0 for one
# process; how tests are grouped and ordered across them: tests/conftest.py.
PYTEST_WORKERS ?= 3
PYTEST_ARGS ?=
# Python may cache the bytecode of what it imports in every command here, even where the
# environment says otherwise: the install does not byte-compile (see below), and with
# PYTHONDONTWRITEBYTECODE=1 (some CI machines export it) every process would compile torch,
# transformers, MLflow and Prefect again (the suite took 31 min).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install run test lint data ui browser docs-screens clean up down docs image image-cuda warm

# The container image (Dockerfile): `make image` builds and tags $(IMAGE):$(VERSION) (the CPU
# build of torch), `make image-cuda` $(IMAGE):$(VERSION)-cuda (torch's CUDA build TORCH_CUDA,
# a tag PyTorch publishes wheels for). infra/compose.yaml and infra/k8s/ run exactly these names
# (tests/unit/test_infra.py checks it); IMAGE=registry.example.com/team/modelyard tags for your
# registry. DOCKER=podman works too.
VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= modelyard
DOCKER ?= docker
TORCH_CUDA ?= cu130
GIT_COMMIT = $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

# Every package at the version requirements.lock pins (pip included; made by `make lock`), then the
# project itself with nothing resolved again. `pip check` fails when pyproject.toml asks for what
# the lock lacks: run `make lock`.
# Not byte-compiled at install (--no-compile): of the ~29,000 modules installed, a run imports a
# few thousand, which Python compiles on first import and caches. pip compiles every one, one at a
# time (about 70 s of the install's 115 s on two cores).
$(STAMP): pyproject.toml constraints.txt requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock pip
	$(BIN)/python -m pip install --quiet --no-compile -c constraints.txt -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check || { echo "requirements.lock is behind pyproject.toml: make lock"; exit 1; }
	touch $(STAMP)

install: $(STAMP)

# requirements.lock from pyproject.toml (the dev extra and the editable build's setuptools
# included) and constraints.txt, resolved by pip-compile with pip's own index settings; it keeps
# the pins it can. LOCK_ARGS=--upgrade moves every pin to the newest allowed,
# LOCK_ARGS="--upgrade-package NAME" one. Needs no installed project: the lock may be behind.
.PHONY: lock
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/pip-compile || $(BIN)/python -m pip install --quiet -c requirements.lock pip-tools
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --extra dev \
		--build-deps-for editable -c constraints.txt --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file requirements.lock $(LOCK_ARGS) \
		pyproject.toml

data: install
	$(BIN)/modelyard data prepare

# The main job on the embedded default: the default dataset (pulled from DVC or regenerated and
# checked against its .dvc pointer), then the retrain flow on the ephemeral Prefect API, MLflow in
# ./mlflow.db and ./mlruns.
run: data
	$(BIN)/modelyard retrain

# The documentation site (mkdocs.yml, docs/) into site/. --strict: a broken link or anchor, a page
# missing from the nav, a link outside the repository or a README over 8 KB fails the build.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Style, types and the layers, zero findings each: ruff (lint + format), mypy --strict,
# import-linter's contracts (DESIGN.md's layers; all configured in pyproject.toml), and hadolint
# on the Dockerfile (every finding down to style level fails).
lint: install
	$(BIN)/hadolint --failure-threshold style Dockerfile
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The checks, the docs build and the bytecode of what the tests import (tests/helpers/warm.py)
# side by side, then the tests.
test: install
	$(MAKE) --no-print-directory -j3 --output-sync=target lint docs warm
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

warm: install
	$(BIN)/python -m tests.helpers.warm

# Both UIs on the embedded stores: MLflow's and Prefect's (its UI told where its API is, so any
# port works): make ui MLFLOW_PORT=5001 PREFECT_PORT=4201
MLFLOW_PORT ?= 5000
PREFECT_PORT ?= 4200
ui: install
	$(BIN)/modelyard ui --port $(MLFLOW_PORT) --prefect-port $(PREFECT_PORT)

# Debian's headless Chromium, which the browser test drives over the DevTools protocol (no
# driver, no download at test time); a no-op where one is installed.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

# Screenshots of the MLflow and Prefect pages a retrain leaves (the browser test's), for the
# docs: docs/images/ui/*.png.
docs-screens: install browser
	mkdir -p docs/images/ui
	DOCS_SCREENS_DIR=$(CURDIR)/docs/images/ui $(BIN)/python -m pytest -n 0 -p no:randomly -q \
		tests/e2e/test_ui_in_browser.py

# Production mode on this machine: Prefect server + MLflow server on PostgreSQL
# (MODELYARD_STACK_POSTGRES, default postgresql://postgres@127.0.0.1:5432; databases of this
# checkout's own), a worker on the `cpu` process pool, the model server; supervised, logs in
# .modelyard/stack/logs. `up` again, or `modelyard stack env`, reprints the exports. `down` stops
# them.
up: install
	$(BIN)/modelyard stack up

down:
	$(BIN)/modelyard stack down

image:
	$(DOCKER) build --build-arg TORCH=cpu --build-arg GIT_COMMIT=$(GIT_COMMIT) \
		--tag $(IMAGE):$(VERSION) .

image-cuda:
	$(DOCKER) build --build-arg TORCH=$(TORCH_CUDA) --build-arg GIT_COMMIT=$(GIT_COMMIT) \
		--tag $(IMAGE):$(VERSION)-cuda .

clean:
	rm -rf .modelyard mlflow.db mlruns .dvc-remote
