"""The DAG folder parses cleanly and cheaply: no import errors, the contracts, and no I/O at parse time."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Parses dags/ with every way out blocked: sockets, the metadata DB, Connections and Variables.
PARSE_PROBE = r"""
import json, socket, sys, time
def refuse(*args, **kwargs):
    raise AssertionError("network access while parsing")
socket.socket.connect = refuse
socket.create_connection = refuse
from airflow.sdk import BaseHook, Variable
def no_conn(*a, **k):
    raise AssertionError("Connection access while parsing")
def no_var(*a, **k):
    raise AssertionError("Variable access while parsing")
BaseHook.get_connection = classmethod(no_conn)
Variable.get = classmethod(no_var)
import sqlalchemy.engine
def no_db(*a, **k):
    raise AssertionError("database access while parsing")
sqlalchemy.engine.Engine.connect = no_db
before = set(sys.modules)
started = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
elapsed = time.perf_counter() - started
heavy = sorted(m for m in set(sys.modules) - before
               if m.split(".")[0] in {"papermill", "looker_sdk", "slack_sdk", "pandas", "duckdb", "nbformat"})
print(json.dumps({"errors": {k: str(v)[-500:] for k, v in bag.import_errors.items()},
                  "dags": sorted(bag.dags), "heavy": heavy}))
"""


@pytest.fixture(scope="module")
def parse_report() -> dict:
    env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////nonexistent/dir/airflow.db"}
    out = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, str(ROOT / "dags")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_dag_folder_parses_without_io_or_heavy_imports(parse_report):
    assert parse_report["errors"] == {}
    assert parse_report["dags"] == ["credit_bot", "credit_bot_approval", "credit_bot_interactions"]
    assert parse_report["heavy"] == []


def test_dag_contracts(dag):
    assert dag.dag_id == "credit_bot"
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.start_date.tzinfo is not None
    assert {"credit_bot", "slack", "looker"} <= set(dag.tags)
    assert "Dry-run is on by default" in (dag.doc_md or "")
    assert set(dag.params) == {"channel", "message_ts", "dry_run", "force"}
    for name in dag.params:
        assert dag.params.get_param(name).description


def test_every_task_has_retries(dag):
    # Settings errors skip them (AirflowFailException): test_settings_errors_fail_the_run_early.
    retries = {t.task_id: t.retries for t in dag.tasks}
    assert all(r >= 1 for r in retries.values()), retries


def test_no_task_can_run_forever(dag):
    # max_active_runs=1: one hung task would hold up every later run.
    timeouts = {t.task_id: t.execution_timeout for t in dag.tasks}
    assert all(timeouts.values()), timeouts


def test_each_task_pushes_one_return_value(dag):
    # A dict return annotation makes @task push every key as an XCom of its own: one API round
    # trip each from every task instance (post_results had 17, a second or more in a burst).
    split = [t.task_id for t in dag.tasks if getattr(t, "multiple_outputs", False)]
    assert split == []


def test_flow_order(dag):
    order = ["fetch_requests", "resolve", "run_notebook", "post_results"]
    for upstream, downstream in itertools.pairwise(order):
        ancestors = {t.task_id for t in dag.get_task(downstream).get_flat_relatives(upstream=True)}
        assert upstream in ancestors
    assert "post_results" in dag.get_task("record_ledger").upstream_task_ids
    # Four task processes before a reply: nothing stands between resolve and the notebooks.
    assert dag.get_task("run_notebook").upstream_task_ids == {"resolve"}
    # The one leaf: it fails the run only after the ledger is written (and is upstream_failed, so
    # the run still fails, when record_ledger or fetch_requests failed: record_ledger skips then,
    # and fetch_requests stays the failed task the failure alert names).
    assert dag.get_task("report_failures").upstream_task_ids == {"record_ledger", "fetch_requests"}
    assert dag.get_task("report_failures").trigger_rule == "all_success"
    # And the approvals, requested after the ledger has them (usually none: it maps to nothing).
    assert sorted(t.task_id for t in dag.leaves) == ["report_failures", "request_approval"]
    assert dag.get_task("approvals").upstream_task_ids == {"record_ledger"}
