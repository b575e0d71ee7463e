"""Secrets stay in connections; the bot only talks to whom it is configured to talk to."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from harness.local import DEMO_OPERATOR
from harness.testing.flows import HOST, all_xcom_values, fixed_result_rule, thread_posts

pytestmark = pytest.mark.integration

WAREHOUSE_PASSWORD = "fake-warehouse-password-0000"
OTHER_CHANNEL = "C0PRODMEMOS"


def _run(dag, **conf) -> str:
    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False, **conf}
    return str(dag.test(run_conf=params).state)


def test_no_secret_reaches_logs_notebooks_ledger_xcom_or_slack(dag, stack, post, capfd, caplog):
    from airflow.models.variable import Variable

    from credit_bot.ledger import LEDGER_VARIABLE

    conn = json.loads(os.environ["AIRFLOW_CONN_CREDIT_WAREHOUSE_DEFAULT"])
    os.environ["AIRFLOW_CONN_CREDIT_WAREHOUSE_DEFAULT"] = json.dumps({**conn, "password": WAREHOUSE_PASSWORD})
    stack.use_settings(products=[fixed_result_rule()], max_attempts=1)
    caplog.set_level(logging.DEBUG)
    sandbox = stack.sandbox
    answered = post(f"<{HOST}/looks/901|spend>")
    leaky = post(f"<{HOST}/looks/912|a notebook that prints its connection>")
    failing = post(f"<{HOST}/looks/905|notebook raises>")
    missing = post(f"<{HOST}/looks/4040|no such look>")
    sandbox.inject("looker", "GET /looks/{id}", "unauthorized")  # a re-login, logged by the hook
    sandbox.inject("slack", "chat.postMessage", "lost_response")  # a failed post, then a retry

    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False}
    run = dag.test(run_conf=params)
    assert str(run.state) == "failed"  # look 905's notebook task failed (its DM is checked too)
    tries = {
        ti.rendered_map_index: ti.try_number
        for ti in run.get_task_instances()
        if ti.task_id == "run_notebook"
    }
    # Not retried: the same notebook would print the same secret again.
    assert [n for label, n in tries.items() if leaky in str(label)] == [1], tries

    assert thread_posts(stack, answered) == ["Approved, $4,948.80, exceptions"]
    for escalated in (leaky, failing, missing):
        assert thread_posts(stack, escalated) == []
    assert "wrote the warehouse connection's secret" in " ".join(d["text"] for d in sandbox.dms())
    secrets = {
        "slack token": sandbox.slack_token,
        "looker client id": sandbox.looker_client_id,
        "looker client secret": sandbox.looker_client_secret,
        "warehouse password": WAREHOUSE_PASSWORD,
    }
    captured = capfd.readouterr()
    places = {
        # Every log record of every task, at DEBUG, as emitted (before Airflow's own masking).
        "task logs": captured.out + captured.err + caplog.text,
        "executed notebooks": "\n".join(p.read_text() for p in Path(stack.output_dir).rglob("*.ipynb")),
        "ledger": Variable.get(LEDGER_VARIABLE),
        "slack posts and DMs": json.dumps(sandbox.posts()),
        "xcom": all_xcom_values(),
    }
    assert len(list(Path(stack.output_dir).rglob("*.ipynb"))) >= 3
    assert "escalating to the operator" in places["task logs"]  # the logs were captured at all
    leaks = [(what, where) for what, s in secrets.items() for where, text in places.items() if s in text]
    assert leaks == []


def test_only_the_configured_channel_operators_and_looker_host(dag, stack, post):
    stack.use_settings(products=[fixed_result_rule()], operators=[DEMO_OPERATOR])
    sandbox = stack.sandbox
    elsewhere = sandbox.add_message(OTHER_CHANNEL, f"<{HOST}/looks/901|spend>", user="U0REQUESTER")
    escalated = post(f"<{HOST}/looks/902|negative> <!channel> <@U0ANALYST>")

    assert _run(dag) == "success"

    # The other channel was never read, nor written to.
    channels = {
        c["params"].get("channel") for c in sandbox.calls(api="slack", method="conversations.history")
    }
    assert OTHER_CHANNEL not in channels
    assert sandbox.posts(OTHER_CHANNEL) == []
    # DMs only to the configured operator; nothing in the thread can ping anyone.
    opened = [c["params"]["users"] for c in sandbox.calls(api="slack", method="conversations.open")]
    assert opened == [DEMO_OPERATOR]
    assert [d["user"] for d in sandbox.dms()] == [DEMO_OPERATOR]
    assert thread_posts(stack, escalated) == []
    assert "<!channel>" not in sandbox.dms()[0]["text"]
    # A permalink to a message in another channel is refused unless that channel is named on purpose.
    permalink = f"https://sandbox.slack.com/archives/{OTHER_CHANNEL}/p{elsewhere.replace('.', '')}"
    sandbox.reset_calls()
    assert _run(dag, message_ts=permalink) == "failed"
    # Only the failure alert to the operator: nothing was read from, or posted to, the other channel.
    calls = [(c["method"], c["params"].get("channel")) for c in sandbox.calls(api="slack")]
    assert calls == [("chat.postMessage", DEMO_OPERATOR)]
    assert sandbox.posts(OTHER_CHANNEL) == []
