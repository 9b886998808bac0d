# The two commands of the README: `make run` and `make test`. Both create the virtual environment
# if there is none and install the project into it (torch pinned by constraints.txt).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.modelyard-installed
# Two xdist workers: this project's CI machine has two cores (PYTEST_WORKERS=auto elsewhere,
# 0 for one process); how tests are grouped and ordered across them: tests/conftest.py.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=

.PHONY: install run test data ui clean up down docs

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

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

test: install docs
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

ui: install
	$(BIN)/modelyard ui

# Production mode on this machine: Prefect server + MLflow server on PostgreSQL
# (MODELYARD_STACK_POSTGRES, default postgresql://postgres@127.0.0.1:5432; databases of this
# checkout's own), a worker on the `cpu` process pool, the model server; supervised, logs in
# .modelyard/stack/logs. `up` again, or `modelyard stack env`, reprints the exports. `down` stops
# them.
up: install
	$(BIN)/modelyard stack up

down:
	$(BIN)/modelyard stack down

clean:
	rm -rf .modelyard mlflow.db mlruns .dvc-remote
