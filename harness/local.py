"""Run CreditBot on this machine against the sandbox: the embedded default of ``make demo`` and the tests.

Starts the Slack/Looker sandbox, builds the sample warehouse, and points Airflow's connections
and the settings Variable at them through environment variables (``AIRFLOW_CONN_…`` and
``AIRFLOW_VAR_…``), exactly as a deployment would supply them — nothing is written to the DB.

The notebook reads the sample warehouse directly (``duckdb``), or through the Trino or Presto client
protocol (``warehouse_protocol="trino"`` / ``"presto"``): then ``harness.warehouse_server`` serves it over
HTTPS (a certificate made for the run) with basic auth, and the connection is a ``trino`` / ``presto`` one
with a throwaway password, as production's would be.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credit_bot.settings import SETTINGS_VARIABLE
from harness import PROJECT_ROOT

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from harness.sandbox import Sandbox
    from harness.warehouse_server import WarehouseServer

DEMO_SCENARIO = PROJECT_ROOT / "include" / "sandbox" / "scenarios" / "demo.json"
DEMO_REQUESTS = PROJECT_ROOT / "include" / "sandbox" / "demo_requests.json"
SAMPLE_WAREHOUSE = PROJECT_ROOT / "include" / "warehouse" / "sample.duckdb"
DEMO_CHANNEL = "C0CREDITTEST"
DEMO_OPERATOR = "U0OPERATOR"
LOOKER_HOST = "credit-sandbox.cloud.looker.com"
WAREHOUSE_PROTOCOLS = ("duckdb", "trino", "presto")
WAREHOUSE_USER = "credit-bot"


@dataclass
class LocalStack:
    sandbox: Sandbox
    warehouse: Path
    output_dir: Path
    # Set when the notebook reaches the warehouse through the Trino/Presto protocol.
    warehouse_server: WarehouseServer | None = None
    warehouse_conn: dict[str, Any] | None = field(default=None, repr=False)

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
        connections = connection_env(self.sandbox, self.warehouse, self.warehouse_conn)
        return {**connections, **settings_env(self.settings(**overrides))}


def settings_env(settings: dict[str, Any]) -> dict[str, str]:
    """The ``AIRFLOW_VAR_…`` value that makes ``settings`` the settings Variable."""
    return {f"AIRFLOW_VAR_{SETTINGS_VARIABLE.upper()}": json.dumps(settings)}


def connection_env(
    sandbox: Sandbox, warehouse: Path, warehouse_conn: dict[str, Any] | None = None
) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` values pointing the bot's connections at the sandbox (fake credentials).

    ``warehouse_conn`` replaces the default DuckDB warehouse connection (e.g. a warehouse server's).
    """
    warehouse_conn = warehouse_conn or {"conn_type": "duckdb", "host": str(warehouse)}
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
        "AIRFLOW_CONN_CREDIT_WAREHOUSE_DEFAULT": json.dumps(warehouse_conn),
    }


@contextmanager
def local_stack(
    output_dir: Path,
    scenario: Path | dict[str, Any] = DEMO_SCENARIO,
    warehouse: Path = SAMPLE_WAREHOUSE,
    warehouse_protocol: str = "duckdb",
    **settings: Any,
) -> Iterator[LocalStack]:
    """Sandbox running, warehouse built, connections and settings in the environment; undone on exit.

    ``scenario`` is a scenario file, or its parsed JSON (relative ``sql_file`` paths then resolve
    against the demo scenario's folder). ``warehouse_protocol``: ``duckdb``, ``trino`` or ``presto``.
    """
    from harness.sample_warehouse import SEED_PATH, build
    from harness.sandbox import Sandbox

    if warehouse_protocol not in WAREHOUSE_PROTOCOLS:
        raise ValueError(
            f"warehouse protocol must be one of {', '.join(WAREHOUSE_PROTOCOLS)}, got {warehouse_protocol!r}"
        )
    # Rebuilt when the seed changed since: a file from an older seed gives other answers (the seed's
    # product_id spelling once changed, and every Verify request then found no Fraud Guard events).
    if not warehouse.exists() or warehouse.stat().st_mtime < SEED_PATH.stat().st_mtime:
        build(warehouse)
    saved = dict(os.environ)
    if isinstance(scenario, dict):
        sandbox_app = Sandbox.from_dict(scenario, base_dir=DEMO_SCENARIO.parent)
    else:
        sandbox_app = Sandbox.from_scenario(scenario)
    with sandbox_app as sandbox, ExitStack() as cleanup:
        server, warehouse_conn = None, None
        if warehouse_protocol != "duckdb":
            server, warehouse_conn = _start_warehouse_server(cleanup, warehouse, warehouse_protocol)
        os.environ.update(connection_env(sandbox, warehouse, warehouse_conn))
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
        stack = LocalStack(
            sandbox=sandbox,
            warehouse=warehouse,
            output_dir=output_dir,
            warehouse_server=server,
            warehouse_conn=warehouse_conn,
        )
        stack.use_settings(**settings)
        try:
            yield stack
        finally:
            os.environ.clear()
            os.environ.update(saved)


def _start_warehouse_server(
    cleanup: ExitStack, warehouse: Path, dialect: str
) -> tuple[WarehouseServer, dict[str, Any]]:
    """The sample warehouse behind the Trino/Presto protocol over HTTPS, with a password made for this run."""
    from harness.warehouse_server import WarehouseServer, self_signed_tls

    tls_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="credit-bot-warehouse-")))
    password = "fake-warehouse-" + secrets.token_hex(8)
    server = WarehouseServer(
        warehouse, dialect=dialect, users={WAREHOUSE_USER: password}, tls=self_signed_tls(tls_dir)
    )
    cleanup.enter_context(server)
    return server, server.connection(WAREHOUSE_USER, password)


def load_dag() -> DAG:
    """The ``credit_bot`` DAG as Airflow parses it from ``dags/``."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag.dags["credit_bot"]
