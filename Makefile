# The two commands a newcomer needs: `make demo` (a whole wave on embedded defaults) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.8
SYNCED := $(VENV)/.synced

export PYTHONPATH := $(CURDIR):$(CURDIR)/plugins

.PHONY: help venv kube test docs demo drill drill-slow demo-stop demo-sim drill-sim lock schema validate bench clean

help:
	@echo "make demo       the lab wave on a real Airflow: HAProxy traffic, Prometheus gates (leaves it running)"
	@echo "make drill      two drills: a fault injected into green at 25 % (gates roll back), then drill-slow"
	@echo "make drill-slow green 40 % slower but error-free: the parity analysis rolls back (thresholds would not)"
	@echo "make demo-stop  stop everything the demo started (by PID)"
	@echo "make demo-sim   a bigger wave on simulated drivers with dag.test (no services needed)"
	@echo "make test    the whole test suite (the docs build included)"
	@echo "make docs    build the documentation site (mkdocs --strict) into site/"
	@echo "make kube    build (or find) the Kubernetes control plane the tests and the lab run"
	@echo "make lock    recompile requirements.txt from requirements.in"
	@echo "make schema  re-export include/schema/wave.schema.json"
	@echo "make bench   benchmarks, each figure with its goal (results appended to bench/results/)"

# The virtualenv follows the lock exactly; it is rebuilt only when the lock or the project changes.
$(SYNCED): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(VENV)/bin/pip install -q "uv==$(UV_VERSION)"
	@# with bytecode: this environment sets PYTHONDONTWRITEBYTECODE, and without .pyc files every Airflow process
	@# (each task's too) compiles its imports again (~1.7 s for airflow.sdk alone)
	$(UV) pip sync -q --compile-bytecode --python $(PY) requirements.txt
	$(UV) pip install -q --python $(PY) --no-deps -e .
	@# the board and gate plugins importable by their package names for every tool in the venv (lint-imports too)
	@echo "$(CURDIR)/plugins" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/slow_injection_plugins.pth"
	@touch $(SYNCED)

venv: $(SYNCED)

# Kubernetes 1.35 from upstream Go modules, cached in ~/.cache/slow-injection/kube (KUBEBUILDER_ASSETS wins).
kube:
	bash deploy/kube/build.sh

# The e2e and the unit tests side by side (tests/run_suite.sh); PYTEST_ARGS runs just those, in one process.
test: venv
	PY=$(PY) tests/run_suite.sh $(PYTEST_ARGS)

# The documentation site (mkdocs.yml, docs/); --strict: a broken link, anchor or page fails the build (not with
# -q, which drops the warnings before --strict counts them). NO_MKDOCS_2_WARNING quiets Material's banner about
# its end of life (May 2027).
docs: venv
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict -d site

demo: venv
	$(PY) -m include.slow_injection.lab.demo demo

drill: venv
	$(PY) -m include.slow_injection.lab.demo drill
	$(PY) -m include.slow_injection.lab.demo drill-slow

drill-slow: venv
	$(PY) -m include.slow_injection.lab.demo drill-slow

demo-stop: venv
	$(PY) -m include.slow_injection.lab.demo stop

demo-sim: venv
	$(PY) -m include.slow_injection.simulated_demo

drill-sim: venv
	$(PY) -m include.slow_injection.simulated_demo --drill

validate: venv
	$(VENV)/bin/slow-injection validate include/waves

schema: venv
	$(VENV)/bin/slow-injection schema

bench: venv
	$(PY) bench/parse_time.py --specs 100 --services 20 --runs 3
	$(PY) bench/orchestration_overhead.py --services 5,20 --runs 3
	$(PY) bench/many_waves.py --waves 10 --services 5
	$(PY) bench/waiting_cost.py --gates 20
	$(PY) bench/rollback_latency.py --drills 10 --interval 1s --compare-drills 3 --compare-interval 5s

lock: venv
	$(UV) pip compile -q requirements.in -o requirements.txt --python-version 3.11

clean:
	rm -rf .demo .pytest_cache site
