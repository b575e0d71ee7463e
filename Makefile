# The few commands a person types. README.md explains them.
# Everything lives inside the repo: the virtualenv in .venv, Airflow's home in .airflow.

# Python: the newest Airflow 3.3 supports (3.13, 3.12, 3.11) among the interpreters on PATH that run
# (a pyenv shim for a version that is not active does not); PYTHON=python3.12 or a path overrides.
# VENV=.venv-3.12 keeps a second interpreter's virtualenv beside the first (make smoke).
SUPPORTED_PYTHONS := python3.13 python3.12 python3.11
ifeq ($(origin PYTHON),undefined)
PYTHON := $(firstword $(foreach p,$(SUPPORTED_PYTHONS),$(shell $(p) -c "" >/dev/null 2>&1 && echo $(p))) \
	$(shell python3 -c "import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))" \
		>/dev/null 2>&1 && echo python3))
endif
PYTHON_VERSION := $(shell $(PYTHON) -c "import sys; print('%d.%d' % sys.version_info[:2])" 2>/dev/null)
UV_VERSION := 0.13.9
VENV ?= .venv
BIN := $(VENV)/bin
export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
export PYTHONPATH := $(CURDIR)/plugins
export NO_PROXY := 127.0.0.1,localhost
export no_proxy := 127.0.0.1,localhost

.PHONY: install demo ui bench soak ledger check-notebook test test-deploy smoke python-info browser-deps lint format lock clean

STAMP := $(VENV)/.installed-py$(PYTHON_VERSION)
install: $(STAMP) $(AIRFLOW_HOME)/.migrated

python-info:
	@echo "$(PYTHON) (Python $(PYTHON_VERSION))"

# Reinstall only when the lock changes; `uv pip sync` makes the venv match the lock exactly.
# Bytecode is compiled once here: every Airflow task is a fresh process, and compiling Airflow,
# papermill and looker_sdk from source at each start cost seconds per task (make bench).
# A virtualenv made by another Python is made anew.
$(STAMP): requirements.lock
	@case "$(PYTHON_VERSION)" in 3.11|3.12|3.13) ;; \
		*) echo "Needs Python 3.11, 3.12 or 3.13 (what Airflow 3.3 supports); found '$(PYTHON)' $(PYTHON_VERSION)." \
			"Install one, or name it: make PYTHON=/path/to/python3.12 ..."; exit 1;; esac
	@echo "Using $(PYTHON) (Python $(PYTHON_VERSION)) for $(VENV); installing requirements.lock …"
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYTHON_VERSION)" ]; \
		then rm -rf $(VENV); fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	@rm -f $(VENV)/.installed*
	@touch $@

$(AIRFLOW_HOME)/.migrated: $(STAMP)
	@mkdir -p $(AIRFLOW_HOME)
	@$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/migrate.log; exit 1)
	@touch $@

# NOTEBOOK=path runs that notebook (checked, then ported on a copy in output/ported) instead of the
# reference one, through the Presto sandbox unless WAREHOUSE says otherwise; WAREHOUSE=trino|presto.
demo: install
	@NOTEBOOK="$(NOTEBOOK)" WAREHOUSE="$(WAREHOUSE)" $(BIN)/python -m harness.demo

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

# BENCH_ARGS: --quick, --compare bench-results/OLD.json, --executor local (see `python -m bench --help`)
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

# A seeded day of traffic with random faults on a real LocalExecutor deployment, judged by an
# independent checker (README, "The soak"). SOAK_SEED replays a run; results in soak-results/.
SOAK_MINUTES ?= 20
SOAK_SEED ?=
soak: install
	$(BIN)/python -m harness.soak --minutes $(SOAK_MINUTES) $(if $(SOAK_SEED),--seed $(SOAK_SEED))

# Recent requests from the credit_bot_ledger Variable, newest first (read-only).
# LEDGER_ARGS: --channel C…, --mode live|dry_run|all, --outcome escalated, --since HOURS, --limit N,
# --json, --file saved.json (see `python -m credit_bot.ledger_report --help`)
ledger: install
	$(BIN)/python -m credit_bot.ledger_report $(LEDGER_ARGS)

# Check a notebook against CreditBot's contract before it goes live, without running it (README,
# "Bring your own notebook"). Exit 1 on blockers. CHECK_ARGS: --kernel NAME (setting kernel_name), --quick.
check-notebook: install
	@test -n "$(NOTEBOOK)" || { echo "usage: make check-notebook NOTEBOOK=path/to/notebook.ipynb"; exit 2; }
	@$(BIN)/python -m credit_bot.notebook_check "$(NOTEBOOK)" $(CHECK_ARGS)

test: install lint browser-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# On another Python (PYTHON=python3.13 VENV=.venv-3.13): install from the lock, the unit tests and one
# full dag.test() flow. CI runs it on each supported Python besides the one the whole suite runs on.
SMOKE_FLOW := tests/dags/test_credit_bot_flow.py::test_answers_each_kind_of_request_once
smoke: $(STAMP)
	$(BIN)/python -m pytest -m "not deploy and not browser and not integration" $(PYTEST_ARGS)
	$(BIN)/python -m pytest $(SMOKE_FLOW) $(PYTEST_ARGS)

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

# mypy, strict, on the runtime package (pyproject.toml, [tool.mypy]).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lock: $(STAMP)
	$(BIN)/uv pip compile --quiet --no-header --universal --python-version 3.11 \
		requirements.txt requirements-dev.txt -o requirements.lock

clean:
	rm -rf $(VENV) $(AIRFLOW_HOME) .pytest_cache
