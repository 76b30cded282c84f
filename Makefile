# Interlock developer commands. Each target sets up .venv itself: `make run`, `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE ?= copy
# Write bytecode at install time, as pip does: a process started with
# PYTHONDONTWRITEBYTECODE (or on a read-only tree) otherwise compiles every module from
# source on every start, which doubles `interlock server`'s cold start.
export UV_COMPILE_BYTECODE := 1

# uv from PATH, or installed with pip into .tools/ when missing.
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
# Two levels of setup in the one .venv: what the service needs (`make run`), and that plus
# the dev group's test and lint tools (every other target). `make run` never installs the
# tools, nor removes them when an earlier target did (--inexact).
RUN_STAMP := .venv/.synced-run
DEV_STAMP := .venv/.synced-dev
LOCK_INPUTS := $(UV) uv.lock pyproject.toml sdk/pyproject.toml rules/pyproject.toml adapters/pyproject.toml service/pyproject.toml
PY_PACKAGES := sdk/src rules/src adapters/src service/src

.PHONY: help run test test-pythons lint format bench clean

help: ## Show this help
	@grep -hE '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36mmake %-13s\033[0m %s\n", $$1, $$2}'

.tools/bin/uv:
	@echo "uv not found: installing it into .tools/ with pip"
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv

$(RUN_STAMP): $(LOCK_INPUTS)
	$(UV) sync --frozen --all-packages --no-dev --inexact
	@touch $@

$(DEV_STAMP): $(LOCK_INPUTS)
	$(UV) sync --frozen --all-packages
	@touch $@ $(RUN_STAMP)

# Our own packages are installed editable, so uv does not compile them; compileall only
# rewrites what changed since the last time.
.PHONY: bytecode bytecode-run
bytecode-run: $(RUN_STAMP)
	@.venv/bin/python -m compileall -q -j0 $(PY_PACKAGES) >/dev/null
bytecode: $(DEV_STAMP) bytecode-run

run: bytecode-run ## Run Interlock on embedded defaults (installs the service only, no dev tools)
	.venv/bin/interlock server $(ARGS)

test: bytecode ## Run the whole test suite against real NATS, PostgreSQL and SQLite
	.venv/bin/pytest $(PYTEST_ARGS)

test-pythons: ## The SDK's tests on Python 3.9 and 3.13, the engine's on 3.13 (.ci/test-pythons)
	UV=$(UV) .ci/test-pythons

lint: $(DEV_STAMP) ## ruff (lint + format check) and mypy strict
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

format: $(DEV_STAMP) ## Apply ruff's fixes and formatting
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

bench: bytecode ## Run the benchmarks in tests/perf; figures printed and written to .bench/
	@mkdir -p .bench
	@set -e; for script in tests/perf/bench_*.py; do \
		echo "== $$script"; .venv/bin/python $$script --out .bench; done

clean: ## Remove the virtualenv, caches and benchmark output
	rm -rf .venv .tools .pythons .pytest_cache .mypy_cache .ruff_cache .bench
