# The menu: `make` alone prints it. Every run target depends on `setup`, which creates the
# virtual environment when it is missing or older than pyproject.toml / constraints.txt.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON_BOOT ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed

# Embedded defaults: no server to install, nothing phoned home, quiet tools. ml_common sets the
# same defaults on import for every other entry point (pytest, dvc stages, python -m …), creates
# PREFECT_HOME's folders (Prefect does not) and gives Prefect's temporary server a start-up budget
# that fits a busy laptop: see ml_common/tool_defaults.py.
export MLFLOW_DISABLE_TELEMETRY ?= true
export DO_NOT_TRACK ?= 1
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_LOGGING_LEVEL ?= WARNING
export PREFECT_HOME ?= $(CURDIR)/artifacts/prefect
export PYTHONUNBUFFERED := 1
# The base image .ci/setup.d/20-docker.sh builds where no registry is reachable; used when present.
LOCAL_BASE_IMAGE := ml-levels-base:bookworm

LEVELS := 1 2 3 4 5
BENCH_TARGETS := $(addprefix bench-level,$(LEVELS))
PACKAGE_1 := level1_notebooks
PACKAGE_2 := level2_churn
PACKAGE_3 := level3_recsys
PACKAGE_4 := level4_fraud
PACKAGE_5 := level5_discovery

.PHONY: help setup lock all test test-slow lint format bench bench-matrix clean level3-down \
        loadtest \
        $(addprefix level,$(LEVELS))
# bench-levelN are pattern targets: make skips pattern rules for .PHONY targets, so not listed.

help: ## Show this menu
	@echo "Five levels of machine learning projects. Targets:"
	@grep -hE '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) && $(PY) -c "import sys" 2>/dev/null || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[all]' -c constraints.txt
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv and install everything (does nothing when up to date)

lock: ## Re-resolve dependencies in a scratch venv and rewrite constraints.txt
	rm -rf .lock-venv && $(PYTHON_BOOT) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip setuptools wheel
	.lock-venv/bin/pip install --quiet -e '.[all]'
	( echo "# Exact versions resolved by 'make lock' on $$(date -u +%F). Used as pip constraints."; \
	  .lock-venv/bin/pip freeze --exclude-editable | sed -E 's/\+cpu$$//' ) > constraints.txt
	rm -rf .lock-venv

all: $(addprefix level,$(LEVELS)) ## Run every level end to end on embedded defaults

level1: setup ## Level 1: execute the Titanic notebook, render it to HTML
	$(PY) -m $(PACKAGE_1) run

level2: setup ## Level 2: churn pipeline (Prefect flow) on Telco and generated data
	$(PY) -m $(PACKAGE_2) run

level3: setup ## Level 3: train, batch-score and deploy the recommender (Docker, else uvicorn)
	@base="$${DOCKER_BASE_IMAGE:-}"; \
	if [ -z "$$base" ] && docker image inspect $(LOCAL_BASE_IMAGE) >/dev/null 2>&1; then \
	  base=$(LOCAL_BASE_IMAGE); fi; \
	DOCKER_BASE_IMAGE="$$base" $(PY) -m $(PACKAGE_3) deploy

level3-down: setup ## Stop the level 3 service started by `make level3`
	$(PY) -m $(PACKAGE_3) down

loadtest: setup ## Level 3: locust load test against the running service (JSON + README table)
	$(PY) -m $(PACKAGE_3) loadtest

level4: setup ## Level 4: fraud system replay: drift, alarm, retrain, recovery
	$(PY) -m $(PACKAGE_4) replay

level5: setup ## Level 5: one autonomous discovery session on a fresh world
	$(PY) -m $(PACKAGE_5) run

test: setup ## Run the test suite (everything but tests marked slow)
	$(PY) -m pytest -m "not slow"

test-slow: setup ## Run only the tests marked slow (CI runs these too)
	$(PY) -m pytest -m slow || [ $$? -eq 5 ]  # 5 = none collected

lint: setup ## ruff; hadolint on Dockerfiles; Kubernetes manifests validated offline
	$(VENV)/bin/ruff check .
	@files=$$(ls docker/*Dockerfile* docker/*/Dockerfile* 2>/dev/null); \
	  if [ -n "$$files" ]; then echo "hadolint $$files"; $(VENV)/bin/hadolint $$files; fi
	@if [ -d k8s ]; then echo "kubernetes-validate k8s/"; \
	  $(VENV)/bin/kubernetes-validate --strict $$(find k8s -name '*.yaml'); fi

format: setup ## Format and auto-fix with ruff
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench: $(BENCH_TARGETS) bench-matrix ## Run every benchmark, then refresh the README's results table
	$(PY) -m ml_common.report

bench-matrix: setup ## The matrix runner on 1 and 2 Dask workers: artifacts/bench/matrix_runner.json
	$(PY) -m ml_common.matrix_bench

bench-level%: setup ## Benchmark one level: writes artifacts/bench/levelN.json
	$(PY) -m $(PACKAGE_$*) bench

clean: ## Delete generated outputs and caches (keeps .venv)
	rm -rf artifacts .pytest_cache .ruff_cache .mypy_cache
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +
