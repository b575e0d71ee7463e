"""Run CreditBot on this machine against the sandbox: the embedded default of ``make demo`` and the tests.

Starts the Slack/Looker sandbox, builds the sample warehouse, and points Airflow's connections
and the settings Variable at them through environment variables (``AIRFLOW_CONN_…`` and
``AIRFLOW_VAR_…``), exactly as a deployment would supply them — nothing is written to the DB.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credit_bot.settings import SETTINGS_VARIABLE
from harness import PROJECT_ROOT

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from harness.sandbox import Sandbox

DEMO_SCENARIO = PROJECT_ROOT / "include" / "sandbox" / "scenarios" / "demo.json"
DEMO_REQUESTS = PROJECT_ROOT / "include" / "sandbox" / "demo_requests.json"
SAMPLE_WAREHOUSE = PROJECT_ROOT / "include" / "warehouse" / "sample.duckdb"
DEMO_CHANNEL = "C0CREDITTEST"
DEMO_OPERATOR = "U0OPERATOR"
LOOKER_HOST = "credit-sandbox.cloud.looker.com"


@dataclass
class LocalStack:
    sandbox: Sandbox
    warehouse: Path
    output_dir: Path

    def settings(self, **overrides: Any) -> dict[str, Any]:
        base = {
            "channel": DEMO_CHANNEL,
            "dry_run": False,
            "operators": [DEMO_OPERATOR],
            "looker_hosts": [LOOKER_HOST],
            "output_dir": str(self.output_dir),
        }
        return {**base, **overrides}

    def use_settings(self, **overrides: Any) -> dict[str, Any]:
        """Make ``overrides`` (on top of the sandbox defaults) the settings Variable for later runs."""
        settings = self.settings(**overrides)
        os.environ.update(settings_env(settings))
        return settings

    def environment(self, **overrides: Any) -> dict[str, str]:
        """Connections and settings Variable for processes started elsewhere (a real deployment)."""
        return {**connection_env(self.sandbox, self.warehouse), **settings_env(self.settings(**overrides))}


def settings_env(settings: dict[str, Any]) -> dict[str, str]:
    """The ``AIRFLOW_VAR_…`` value that makes ``settings`` the settings Variable."""
    return {f"AIRFLOW_VAR_{SETTINGS_VARIABLE.upper()}": json.dumps(settings)}


def connection_env(sandbox: Sandbox, warehouse: Path) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` values pointing the bot's connections at the sandbox (fake credentials)."""
    return {
        "AIRFLOW_CONN_SLACK_API_DEFAULT": json.dumps(
            {
                "conn_type": "slack",
                "password": sandbox.slack_token,
                "extra": {"base_url": sandbox.slack_base_url, "timeout": 10},
            }
        ),
        # Socket Mode's app-level token: lets the triggerer's event intake run against the sandbox.
        "AIRFLOW_CONN_SLACK_APP_DEFAULT": json.dumps(
            {
                "conn_type": "slack",
                "password": sandbox.slack_app_token,
                "extra": {"base_url": sandbox.slack_base_url},
            }
        ),
        "AIRFLOW_CONN_LOOKER_DEFAULT": json.dumps(
            {
                "conn_type": "http",
                "host": sandbox.looker_base_url,
                "login": sandbox.looker_client_id,
                "password": sandbox.looker_client_secret,
                "extra": {"timeout": 10, "verify_ssl": False},
            }
        ),
        "AIRFLOW_CONN_CREDIT_WAREHOUSE_DEFAULT": json.dumps({"conn_type": "duckdb", "host": str(warehouse)}),
    }


@contextmanager
def local_stack(
    output_dir: Path,
    scenario: Path | dict[str, Any] = DEMO_SCENARIO,
    warehouse: Path = SAMPLE_WAREHOUSE,
    **settings: Any,
) -> Iterator[LocalStack]:
    """Sandbox running, warehouse built, connections and settings in the environment; undone on exit.

    ``scenario`` is a scenario file, or its parsed JSON (relative ``sql_file`` paths then resolve
    against the demo scenario's folder).
    """
    from harness.sample_warehouse import build
    from harness.sandbox import Sandbox

    if not warehouse.exists():
        build(warehouse)
    saved = dict(os.environ)
    if isinstance(scenario, dict):
        sandbox_app = Sandbox.from_dict(scenario, base_dir=DEMO_SCENARIO.parent)
    else:
        sandbox_app = Sandbox.from_scenario(scenario)
    with sandbox_app as sandbox:
        os.environ.update(connection_env(sandbox, warehouse))
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
        stack = LocalStack(sandbox=sandbox, warehouse=warehouse, output_dir=output_dir)
        stack.use_settings(**settings)
        try:
            yield stack
        finally:
            os.environ.clear()
            os.environ.update(saved)


def load_dag() -> DAG:
    """The ``credit_bot`` DAG as Airflow parses it from ``dags/``."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag.dags["credit_bot"]
