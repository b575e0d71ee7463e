"""Full runs with the notebook's warehouse behind the Trino or Presto protocol (harness.warehouse_server).

The reference notebook queries the sample warehouse through the real ``trino`` / ``prestodb`` client over
HTTPS with basic auth, as it would the team's Presto: the answers are the DuckDB ones, and a wrong password
escalates the request without the password appearing anywhere the bot writes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.local import LocalStack, local_stack
from harness.testing.flows import CHANNEL, HOST, all_xcom_values, scenario, thread_posts

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "fake-wrong-warehouse-password-0000"


def _stack(tmp_path: Path, protocol: str) -> Iterator[LocalStack]:
    from airflow.models.variable import Variable

    from credit_bot.ledger import LEDGER_VARIABLE

    Variable.delete(LEDGER_VARIABLE)
    with local_stack(tmp_path / "notebooks", scenario=scenario(), warehouse_protocol=protocol) as running:
        yield running
    Variable.delete(LEDGER_VARIABLE)


@pytest.fixture(params=["presto", "trino"])
def server_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalStack]:
    yield from _stack(tmp_path, request.param)


@pytest.fixture
def presto_stack(tmp_path: Path) -> Iterator[LocalStack]:
    yield from _stack(tmp_path, "presto")


def _poster(stack: LocalStack) -> Callable[[str], str]:
    return lambda text: stack.sandbox.add_message(CHANNEL, text, user="U0REQUESTER")


def _run(dag: Any) -> str:
    return str(
        dag.test(run_conf={"channel": None, "message_ts": None, "dry_run": None, "force": False}).state
    )


def test_answers_through_the_protocol_match_duckdb(dag: Any, server_stack: LocalStack) -> None:
    post = _poster(server_stack)
    acme = post(f"Fraud spend: <{HOST}/looks/101|$20,902.40>")
    dashboard = post(f"<{HOST}/dashboards/7|bolt and cobalt>")

    assert _run(dag) == "success"

    # The figures README and demo_requests.json give for the DuckDB path.
    assert thread_posts(server_stack, acme) == ["Approved, $10,226.35, exceptions"]
    assert thread_posts(server_stack, dashboard) == ["Approved, $1,283.00, exceptions"]
    server = server_stack.warehouse_server
    assert server is not None
    prefix = server.dialect.prefix
    statements = [r for r in server.received if r.method == "POST"]
    assert len(statements) >= 3 * 5  # three notebooks, each its Looker SQL and its lookups
    assert all(r.headers.get(f"{prefix}User") == "credit-bot" for r in statements)
    assert server.failed_logins == 0


def test_wrong_password_escalates_and_leaks_nowhere(
    dag: Any, presto_stack: LocalStack, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.models.variable import Variable

    from credit_bot.ledger import LEDGER_VARIABLE

    conn = json.loads(os.environ["AIRFLOW_CONN_CREDIT_WAREHOUSE_DEFAULT"])
    right_password = conn["password"]
    os.environ["AIRFLOW_CONN_CREDIT_WAREHOUSE_DEFAULT"] = json.dumps({**conn, "password": WRONG_PASSWORD})
    presto_stack.use_settings(max_attempts=1)
    caplog.set_level(logging.DEBUG)
    acme = _poster(presto_stack)(f"Fraud spend: <{HOST}/looks/101|$20,902.40>")

    # The request is escalated; its notebook task failed, so the run ends failed (report_failures),
    # with no run alert on top of the request's DM, which says it all.
    assert _run(dag) == "failed"

    sandbox = presto_stack.sandbox
    assert thread_posts(presto_stack, acme) == []
    dms = " ".join(d["text"] for d in sandbox.dms())
    assert [d for d in sandbox.dms() if not d["metadata"]] == []  # no run alert
    # The operator hears of it, with the cause and the fix.
    assert "refused the login of user 'credit-bot' (HTTP 401)" in dms
    assert "Check the connection's login and password" in dms
    server = presto_stack.warehouse_server
    assert server is not None
    assert server.failed_logins >= 1
    notebooks = list(Path(presto_stack.output_dir).rglob("*.ipynb"))
    assert notebooks
    notebook_text = "\n".join(p.read_text() for p in notebooks)
    assert "refused the login of user 'credit-bot' (HTTP 401)" in notebook_text
    captured = capfd.readouterr()
    places = {
        "task logs": captured.out + captured.err + caplog.text,
        "executed notebooks": notebook_text,
        "ledger": Variable.get(LEDGER_VARIABLE),
        "slack posts and DMs": json.dumps(sandbox.posts()),
        "xcom": all_xcom_values(),
        "warehouse server": json.dumps([r.__dict__ for r in server.received]),
    }
    leaks = [
        (which, where)
        for which, secret in (("wrong password", WRONG_PASSWORD), ("right password", right_password))
        for where, text in places.items()
        if secret in text
    ]
    assert leaks == []
