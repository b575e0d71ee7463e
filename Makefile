# The few commands a person types. README.md explains them.
# Everything lives inside the repo: the virtualenv in .venv, Airflow's home in .airflow.

PYTHON ?= python3.11
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
export PYTHONPATH := $(CURDIR)/plugins
export NO_PROXY := 127.0.0.1,localhost
export no_proxy := 127.0.0.1,localhost

.PHONY: install demo ui bench ledger test test-deploy browser-deps lint format lock clean

install: $(VENV)/.installed $(AIRFLOW_HOME)/.migrated

# Reinstall only when the lock changes; `uv pip sync` makes the venv match the lock exactly.
# Bytecode is compiled once here: every Airflow task is a fresh process, and compiling Airflow,
# papermill and looker_sdk from source at each start cost seconds per task (make bench).
$(VENV)/.installed: requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	touch $@

$(AIRFLOW_HOME)/.migrated: $(VENV)/.installed
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/migrate.log; exit 1)
	touch $@

demo: install
	$(BIN)/python -m harness.demo

# The Airflow UI on the demo's Airflow home (.airflow, after `make demo`): its runs, task logs, the
# CreditBot requests page and executed notebooks. Simple auth manager, user admin; its password is
# generated into .airflow/simple_auth_manager_passwords.json.generated on the first start.
UI_PORT ?= 8080
UI_HOST ?= 127.0.0.1
ui: install
	@test -d output/notebooks || { echo "nothing to show yet: run make demo first"; exit 1; }
	@echo "Airflow UI on http://localhost:$(UI_PORT) (user admin, password in $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated)"
	AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager \
	AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin \
	AIRFLOW__API__BASE_URL=http://localhost:$(UI_PORT) \
	$(BIN)/airflow api-server --host $(UI_HOST) --port $(UI_PORT)

# BENCH_ARGS: --quick, --compare bench-results/OLD.json, --executor local (see bench/credit_bot_bench.py)
bench: install
	$(BIN)/python -m bench.credit_bot_bench $(BENCH_ARGS)

# Recent requests from the credit_bot_ledger Variable, newest first (read-only).
# LEDGER_ARGS: --channel C…, --mode live|dry_run|all, --outcome escalated, --since HOURS, --limit N,
# --json, --file saved.json (see `python -m credit_bot.ledger_report --help`)
ledger: install
	$(BIN)/python -m credit_bot.ledger_report $(LEDGER_ARGS)

test: install lint browser-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Just the real-deployment tests (Airflow's components on this machine's PostgreSQL and Redis);
# `make test` runs them too.
test-deploy: install
	$(BIN)/python -m pytest -m deploy tests/deploy $(PYTEST_ARGS)

# Debian's Chromium for tests/browser (Playwright drives it; Playwright's own browser download does
# not work here). Never fails: without apt-get, root or the network, the browser test skips and says why.
CHROMIUM := /usr/bin/chromium
BROWSER_PACKAGES := chromium fonts-liberation
browser-deps:
	@test -x $(CHROMIUM) || ! command -v apt-get >/dev/null || { \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq --no-install-recommends $(BROWSER_PACKAGES) >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y -qq --no-install-recommends $(BROWSER_PACKAGES) >/dev/null; }; \
	} || echo "browser-deps: could not install $(BROWSER_PACKAGES) with apt-get; the browser test will skip"

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lock: $(VENV)/.installed
	$(BIN)/uv pip compile --quiet --no-header --universal --python-version 3.11 \
		requirements.txt requirements-dev.txt -o requirements.lock

clean:
	rm -rf $(VENV) $(AIRFLOW_HOME) .pytest_cache
