# The two commands of the README:
#   make reproduce   create/update .venv, then run the main job (CONFIG, default config/tiny.yaml, all cores)
#   make test        create/update .venv, then run the test suite
# Setup is idempotent: the venv is (re)installed only when requirements.lock or
# pyproject.toml changed since the last install (the stamp file records it).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all
PORT   ?= 5000
CONFIG ?= config/tiny.yaml
# Everything the harness launches runs offline, with its caches inside the project.
export HF_HUB_OFFLINE=1
export HF_DATASETS_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export MLFLOW_DISABLE_TELEMETRY=true
export HF_HOME=$(CURDIR)/results/cache/hf
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: reproduce test test-all setup lock mlflow-ui

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed (Snakemake 9); set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

reproduce: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG)   # profiles/default loads by itself (Snakemake's default workflow profile)
	@$(BIN)/python -m jest verdict --config $(CONFIG)

# The default suite keeps one real Snakemake run of the smoke DAG, shared by tests/test_integrity_dag.py
# and test_workflow.py (Ctrl-C, SIGKILL of Snakemake, re-runs, identical results); `make test-all` adds
# the tests marked `dag`: two more smoke DAGs (one job killed, a checkout under a path with a space).
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not dag" tests

test-all: $(STAMP)
	$(BIN)/python -m pytest -q tests

# Re-pin after changing dependencies in pyproject.toml (keeps torch at the CPU build's version).
lock: $(STAMP)
	@{ sed -n '1,4p' requirements.lock; $(BIN)/python -m pip freeze --exclude-editable | grep -v '^jest' \
	   | sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > requirements.lock.new && mv requirements.lock.new requirements.lock

# MLflow UI over the config's store, bound to 127.0.0.1 only, opened on the headline runs
# table (it prints the URL): make mlflow-ui [PORT=5000] [CONFIG=config/tiny.yaml]
mlflow-ui: $(STAMP)
	$(BIN)/python -m jest mlflow-ui --config $(CONFIG) --port $(PORT)
