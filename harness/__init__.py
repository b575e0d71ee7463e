"""What only runs on a developer's machine: never imported by the DAG or ``credit_bot``, never shipped.

* ``harness.sandbox`` — local emulator of the Slack Web API and Looker API 4.0 the real SDKs talk to;
* ``harness.sample_warehouse`` — builds the bundled DuckDB warehouse the reference notebook reads;
* ``harness.warehouse_server`` — that warehouse behind the Trino/Presto client protocol, for the real clients;
* ``harness.local`` — the embedded default stack (sandbox + warehouse + environment) for ``dag.test()``;
* ``harness.deployment`` — Airflow's components as processes on PostgreSQL/Redis, for tests and the bench;
* ``harness.demo`` — ``make demo``;
* ``harness.testing`` — helpers the test suite shares.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
