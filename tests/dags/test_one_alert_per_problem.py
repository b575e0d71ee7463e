"""One alert per problem (issue 31, item 4): full runs (``dag.test()``) that count the operators' DMs.

A request's own DMs carry its metadata (first failure, give-up); a run's failure alert carries
none. A run stays red where it was red before, but its alert fires only for what no request DM
already told: the settings, Slack or the ledger failing, or a DM that could not be delivered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import PROJECT_ROOT
from harness.local import DEMO_OPERATOR, LocalStack, local_stack
from harness.testing.flows import CHANNEL, HOST, fixed_result_rule, ledger_entry, scenario, thread_posts

pytestmark = pytest.mark.integration

MIXED_NOTEBOOK = PROJECT_ROOT / "tests" / "data" / "mixed_parameters_cell.ipynb"
ALERTS = "C0CREDITALERTS"


def _run(dag, **conf):
    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False, **conf}
    return dag.test(run_conf=params)


def _request_dms(stack: LocalStack) -> list[dict]:
    return [d for d in stack.sandbox.dms(DEMO_OPERATOR) if d["metadata"]]


def _alerts(stack: LocalStack) -> list[str]:
    return [d["text"] for d in stack.sandbox.dms(DEMO_OPERATOR) if not d["metadata"]]


def test_every_task_but_the_per_request_ones_alerts_on_its_own_failure(dag):
    from credit_bot import alerts
    from credit_bot.tasks.report import REQUEST_TASKS

    own = {t.task_id for t in dag.tasks if alerts.alerts_on_its_own(t)}
    assert own == {t.task_id for t in dag.tasks} - set(REQUEST_TASKS)
    assert {"fetch_requests", "record_ledger", "report_failures"} <= own
    callbacks = dag.on_failure_callback
    assert alerts.on_dag_failure in (callbacks if isinstance(callbacks, list) else [callbacks])


def test_a_request_failing_on_every_attempt_costs_two_dms_and_every_run_stays_red(dag, stack, post):
    from credit_bot.settings import Settings

    max_attempts = Settings().max_attempts  # the default, 3: the issue measured 5 DMs with it
    stack.use_settings(products=[fixed_result_rule()])
    ts = post(f"<{HOST}/looks/905|a notebook that raises>")

    runs = [_run(dag) for _ in range(max_attempts)]

    for dag_run in runs:  # Airflow's own views keep their meaning: each run with a failed task is red
        assert str(dag_run.state) == "failed"
        assert str(dag_run.get_task_instance("run_notebook", map_index=0).state) == "failed"
        assert str(dag_run.get_task_instance("report_failures").state) == "failed"
    assert ledger_entry(ts)["outcome"] == "escalated"
    assert thread_posts(stack, ts) == []
    dms = stack.sandbox.dms(DEMO_OPERATOR)
    kinds = [d["metadata"]["event_payload"]["state"] if d["metadata"] else "run alert" for d in dms]
    assert kinds == ["retrying", "escalated"]  # before issue 31: 5, a run alert after each red run
    assert "tries again at the next run (attempt 1 of 3)" in dms[0]["text"]
    assert "gave up after 3 attempts" in dms[1]["text"]
    assert _alerts(stack) == []  # the request's DMs said it all: no "CreditBot failed" per red run

    assert str(_run(dag).state) == "success"  # nothing left to do: green, and silent
    assert len(stack.sandbox.dms(DEMO_OPERATOR)) == 2


def test_a_notebook_refused_at_fetch_requests_alerts_once_quoting_the_cause(dag, stack, post):
    stack.use_settings(products=[{"name": "verify", "pattern": "CREDITS", "notebook": str(MIXED_NOTEBOOK)}])
    post(f"<{HOST}/looks/921>")

    dag_run = _run(dag)

    assert str(dag_run.state) == "failed"
    assert str(dag_run.get_task_instance("fetch_requests").state) == "failed"
    [alert] = stack.sandbox.dms(DEMO_OPERATOR)
    assert not alert["metadata"]  # a run's alert, not a request's DM
    [error] = [line for line in alert["text"].splitlines() if line.startswith("• Error: ")]
    # The exception's own message, in one line; not "the error is in its log".
    assert error.startswith(
        f"• Error: SettingsError: product 'verify': notebook {MIXED_NOTEBOOK} cannot run under CreditBot: "
        "cell 3: no cell is tagged `parameters`"
    ), error
    assert "AirflowFailException" not in error
    assert "the error is in its log" not in alert["text"]
    assert ", task fetch_requests\n" in alert["text"]


@pytest.fixture
def alert_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """The sandbox with an alert channel and a deactivated user; live, a fresh ledger."""
    from airflow.models.variable import Variable

    from credit_bot.alerts import ALERT_CHANNEL_ENV
    from credit_bot.ledger import LEDGER_VARIABLE

    monkeypatch.delenv(ALERT_CHANNEL_ENV, raising=False)
    Variable.delete(LEDGER_VARIABLE)
    base = scenario()
    base["slack"]["channels"].append({"id": ALERTS, "name": "credit-bot-alerts", "messages": []})
    base["slack"]["users"].append({"id": "U0GONE", "name": "former-operator", "deleted": True})
    with local_stack(tmp_path / "notebooks", scenario=base) as running:
        yield running
    Variable.delete(LEDGER_VARIABLE)


def test_a_dm_that_could_not_be_delivered_still_alerts(dag, alert_stack):
    stack = alert_stack
    operators = ["U0GONE", DEMO_OPERATOR]
    stack.use_settings(products=[fixed_result_rule()], operators=operators, alert_channel=ALERTS)
    negative = stack.sandbox.add_message(CHANNEL, f"<{HOST}/looks/902|spend>", user="U0REQUESTER")

    dag_run = _run(dag)

    assert str(dag_run.state) == "failed"
    assert str(dag_run.get_task_instance("report_failures").state) == "failed"
    assert ledger_entry(negative)["outcome"] == "escalated"
    [escalated] = _request_dms(stack)  # the operator who could be DMed got the request's DM
    assert "negative" in escalated["text"]
    [alert] = _alerts(stack)  # and one alert: a DM reached not every operator
    assert ", task report_failures\n" in alert
    [error] = [line for line in alert.splitlines() if line.startswith("• Error: ")]
    assert f"request {negative}: an operator DM could not be sent: could not DM U0GONE (user_disabled)" in (
        error
    )
    assert "• Next: the ledger has this run's outcomes" in alert
