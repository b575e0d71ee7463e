"""Shared by the full-DAG-run tests (``tests/dags``): the sandbox data they add, readers of the outcome."""

from __future__ import annotations

import copy
import json
from typing import Any

from harness import PROJECT_ROOT
from harness.local import DEMO_SCENARIO, LocalStack

TEST_NOTEBOOK = PROJECT_ROOT / "tests" / "data" / "fixed_result.ipynb"
# Shaped like the team's own file: untagged parameters cell, pandas, plot, df['credit'].sum().
TEAM_NOTEBOOK = PROJECT_ROOT / "tests" / "data" / "team_verify_credit.ipynb"
CHANNEL = "C0CREDITTEST"
HOST = "https://credit-sandbox.cloud.looker.com"

# Looks whose SQL drives the fixed-result test notebook: (look id, SQL marker).
RESULT_LOOKS = {
    901: "RESULT=4948.8 SPEND=9000",
    902: "RESULT=-12.5",
    903: "RESULT=nan",
    904: "RESULT='about forty dollars'",
    905: "RESULT=raise",
    906: "RESULT=150 SPEND=100",
    907: "RESULT=12.345",
    908: "RESULT=die",
    909: "RESULT=sleep60",
    912: "RESULT=leak",
}
# Looks whose SQL drives the team-shaped notebook: one credit per protection mode.
TEAM_LOOKS = {
    921: "CREDITS=1234.5678,179.7312,0.1",  # a numpy.float64 sum: 1414.399 -> $1,414.40
    922: "CREDITS=120,35",  # an integer column: a numpy.int64, $155.00
    923: "CREDITS=0.1,0.2",  # 0.30000000000000004 -> $0.30
    924: "CREDITS: none",  # the notebook's marker search finds nothing and raises
}


def scenario() -> dict[str, Any]:
    data = copy.deepcopy(json.loads(DEMO_SCENARIO.read_text()))
    looker = data["looker"]
    for look_id, marker in {**RESULT_LOOKS, **TEAM_LOOKS}.items():
        looker["queries"].append(
            {
                "id": look_id * 10,
                "slug": f"qTest{look_id}",
                "model": "billing",
                "view": "test",
                "sql": f"SELECT 1 -- test query, product Authy\n-- Authy {marker}",
            }
        )
        looker["looks"].append({"id": look_id, "title": f"test look {look_id}", "query_id": look_id * 10})
    # A Look whose query has no SQL at all, and one whose SQL is enormous (~600 kB).
    enormous = "SELECT 1 -- Authy RESULT=77.7\n" + "-- a long generated comment line\n" * 20_000
    for look_id, sql in ((910, ""), (911, enormous)):
        looker["queries"].append(
            {"id": look_id * 10, "slug": f"qTest{look_id}", "model": "billing", "view": "test", "sql": sql}
        )
        looker["looks"].append({"id": look_id, "title": f"test look {look_id}", "query_id": look_id * 10})
    return data


def fixed_result_rule(pattern: str = "RESULT=") -> dict[str, Any]:
    """Settings products that route the test Looks to the fixed-result notebook, the rest as usual."""
    return {"name": "verify", "pattern": pattern, "notebook": str(TEST_NOTEBOOK)}


def team_rule() -> dict[str, Any]:
    """Settings products that route the team Looks to the team-shaped notebook."""
    return {"name": "verify", "pattern": "CREDITS", "notebook": str(TEAM_NOTEBOOK)}


def thread_posts(stack: LocalStack, ts: str) -> list[str]:
    return [p["text"] for p in stack.sandbox.posts(CHANNEL) if p.get("thread_ts") == ts]


def ledger_entry(ts: str, mode: str = "live") -> dict[str, Any]:
    from airflow.models.variable import Variable

    from credit_bot.ledger import LEDGER_VARIABLE

    book = json.loads(Variable.get(LEDGER_VARIABLE))
    return book["channels"][CHANNEL][mode]["requests"][ts]


def all_xcom_values() -> str:
    """Every XCom value in the (SQLite) metadata DB, as text: for tests that look for leaked secrets."""
    import sqlite3

    from airflow.configuration import conf

    db = conf.get("database", "sql_alchemy_conn").removeprefix("sqlite:///")
    with sqlite3.connect(db) as connection:
        return "\n".join(str(row[0]) for row in connection.execute("SELECT value FROM xcom"))
