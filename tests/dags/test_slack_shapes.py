"""Full runs against Slack as it really is: workflow and app posts, links outside ``text``, changes
that are not edits, a token missing a scope, and operators who cannot be told.

The message shapes come from Slack's documentation (``harness.testing.slack_shapes`` names the
sources); each case runs the whole DAG with ``dag.test()`` against the sandbox and checks what
Slack saw: the thread replies, the DMs, the alert channel, and the run's state.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.local import DEMO_OPERATOR, LocalStack, local_stack
from harness.sandbox.scenario import DEFAULT_SLACK_SCOPES
from harness.testing import slack_shapes as shapes
from harness.testing.flows import CHANNEL, HOST, fixed_result_rule, ledger_entry, scenario, thread_posts

pytestmark = pytest.mark.integration

ALERTS = "C0CREDITALERTS"
GONE = "U0GONE"  # a deactivated operator
ANSWER_901 = "Approved, $4,948.80, exceptions"
ANSWER_907 = "Approved, $12.35, exceptions"
LINK_REQUEST = "Please provide a Looker link"


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """The usual sandbox plus an alert channel and a deactivated user; live, a fresh ledger."""
    from airflow.models.variable import Variable

    from credit_bot.alerts import ALERT_CHANNEL_ENV
    from credit_bot.ledger import LEDGER_VARIABLE

    monkeypatch.delenv(ALERT_CHANNEL_ENV, raising=False)
    data = copy.deepcopy(scenario())
    data["slack"]["channels"].append({"id": ALERTS, "name": "credit-bot-alerts", "messages": []})
    data["slack"]["users"].append({"id": GONE, "name": "former-operator", "deleted": True})
    Variable.delete(LEDGER_VARIABLE)
    with local_stack(tmp_path / "notebooks", scenario=data) as running:
        running.use_settings(products=[fixed_result_rule()], request_bots=[shapes.WORKFLOW_BOT])
        yield running
    Variable.delete(LEDGER_VARIABLE)


def _run(dag: Any, **conf: Any) -> Any:
    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False, **conf}
    return dag.test(run_conf=params)


def _post(stack: LocalStack, text: str, **extra: Any) -> str:
    extra.setdefault("user", "U0REQUESTER")
    return stack.sandbox.add_message(CHANNEL, text, **extra)


def _labels(dag_run: Any, task_id: str) -> set[str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance.rendered_map_index).filter(
            TaskInstance.dag_id == dag_run.dag_id,
            TaskInstance.run_id == dag_run.run_id,
            TaskInstance.task_id == task_id,
        )
        return {row[0] for row in rows}


def test_workflow_app_and_forwarded_posts_in_one_run(dag, stack):
    look_901, look_907 = f"{HOST}/looks/901", f"{HOST}/looks/907"
    form = _post(
        stack, "", **shapes.workflow_post(*shapes.workflow_form("U0ANALYST", shapes.link(look_901, "$9,000")))
    )
    form_no_link = _post(stack, "", **shapes.workflow_post(*shapes.workflow_form("U0ANALYST", None)))
    other_bot = _post(
        stack,
        "",
        **shapes.workflow_post(shapes.link(look_901, "$9,000"), bot_id=shapes.OTHER_BOT, app_id="A0DIGEST"),
    )
    source = "1763990000.000100"  # the forwarded message, in a channel the bot does not read
    forwarded = _post(
        stack,
        "",
        **shapes.forwarded(
            "", shapes.rich_text([shapes.link(look_907, "$12.35")]), channel="C0OTHER", ts=source
        ),
    )
    shared = _post(
        stack,
        "Please credit this one, thanks",
        **shapes.forwarded(f"Fraud spend: <{look_901}|$9,000>", [], channel="C0OTHER", ts=source),
    )
    with_unfurl = _post(stack, f"Fraud spend: <{look_907}|$12.35>")
    stack.sandbox.unfurl(CHANNEL, with_unfurl, shapes.unfurl(look_907))

    dag_run = _run(dag)

    assert str(dag_run.state) == "success"
    assert thread_posts(stack, form) == [ANSWER_901]  # answered in the workflow post's thread
    [asked] = thread_posts(stack, form_no_link)
    assert asked.startswith(LINK_REQUEST)
    assert thread_posts(stack, other_bot) == []
    assert thread_posts(stack, forwarded) == [ANSWER_907]
    assert thread_posts(stack, shared) == [ANSWER_901]
    assert thread_posts(stack, with_unfurl) == [ANSWER_907]  # the preview did not count the link twice
    assert stack.sandbox.dms() == []
    assert ledger_entry(form)["outcome"] == "answered"
    assert ledger_entry(form)["requester"] == "U0ANALYST"
    assert ledger_entry(form_no_link)["outcome"] == "link_requested"
    assert ledger_entry(with_unfurl)["links"] == [look_907]
    with pytest.raises(KeyError):
        ledger_entry(other_bot)
    # The requester of a form is the person it names, not the workflow's bot.
    labels = {name.split(" · ")[-1].split(" → ")[0]: name for name in _labels(dag_run, "post_results")}
    assert labels[form].startswith("U0ANALYST · ")
    assert labels[form_no_link].startswith("U0ANALYST · ")
    assert labels[forwarded].startswith("U0REQUESTER · ")
    # The token's scopes were checked once, first; nothing else asked Slack who the bot is.
    methods = [c["method"] for c in stack.sandbox.calls(api="slack")]
    assert methods[0] == "auth.test"
    assert methods.count("conversations.history") == 1


def test_tombstoned_parent_is_closed_and_a_reply_under_it_is_no_request(dag, stack):
    waiting = _post(stack, "credit please, link to follow")
    assert str(_run(dag).state) == "success"
    assert thread_posts(stack, waiting)[0].startswith(LINK_REQUEST)

    # The author deletes the post (it stays as a tombstone: it has the bot's reply) and then
    # replies with a link; a second post is deleted under a reply before the bot ever saw it.
    stack.sandbox.delete_message(CHANNEL, waiting)
    stack.sandbox.add_message(CHANNEL, f"<{HOST}/looks/901>", user="U0REQUESTER", thread_ts=waiting)
    unseen = _post(stack, "another request")
    stack.sandbox.add_message(CHANNEL, f"here <{HOST}/looks/907>", user="U0REQUESTER", thread_ts=unseen)
    stack.sandbox.delete_message(CHANNEL, unseen)
    stack.sandbox.reset_calls()

    assert str(_run(dag).state) == "success"

    assert len(thread_posts(stack, waiting)) == 1  # only the earlier link request
    assert thread_posts(stack, unseen) == []
    assert stack.sandbox.dms() == []
    assert ledger_entry(waiting)["outcome"] == "deleted"
    with pytest.raises(KeyError):
        ledger_entry(unseen)
    assert stack.sandbox.calls(api="looker") == []
    assert stack.sandbox.calls(api="slack", method="chat.postMessage") == []


def test_token_without_im_history_fails_the_run_at_once_naming_the_scope(dag, stack, capfd):
    _post(stack, f"<{HOST}/looks/901>")
    stack.sandbox.set_slack_scopes([s for s in DEFAULT_SLACK_SCOPES if s != "im:history"])

    dag_run = _run(dag)

    assert str(dag_run.state) == "failed"
    assert dag_run.get_task_instance("fetch_requests").try_number == 1  # no retries: a setup error
    output = "".join(capfd.readouterr())
    assert "MissingScopes" in output
    assert "im:history: to read an operator's DM back" in output
    assert "chat:write:" not in output  # only what is missing is named
    # Failed before any other call: no channel read, no Looker call; only the failure alert
    # (chat:write is there).
    assert [c["method"] for c in stack.sandbox.calls(api="slack")] == ["auth.test", "chat.postMessage"]
    [alert] = stack.sandbox.dms(DEMO_OPERATOR)
    assert "CreditBot failed" in alert["text"]
    assert stack.sandbox.calls(api="looker") == []


def test_token_without_posting_scopes_still_dry_runs_and_warns(dag, stack, caplog):
    stack.use_settings(products=[fixed_result_rule()], dry_run=True)
    _post(stack, f"<{HOST}/looks/901>")
    stack.sandbox.set_slack_scopes(["channels:history"])

    assert str(_run(dag).state) == "success"
    output = caplog.text
    assert "going live will fail at once" in output
    assert "chat:write: to post thread replies" in output


def test_operator_who_cannot_be_dmed_is_told_in_the_alert_channel_and_the_run_fails(stack):
    from credit_bot import alerts
    from harness.local import load_dag

    dag = load_dag()  # a copy with the failure callback armed (dag.test() runs it in-process)
    dag.on_failure_callback = [alerts.on_dag_failure]
    dag.has_on_failure_callback = True
    stack.use_settings(products=[fixed_result_rule()], operators=[GONE, DEMO_OPERATOR], alert_channel=ALERTS)
    negative = _post(stack, f"<{HOST}/looks/902|spend>")  # an amount that must not be posted: escalated

    dag_run = _run(dag)

    assert str(dag_run.state) == "failed"
    assert str(dag_run.get_task_instance("record_ledger").state) == "success"  # ledger first
    assert str(dag_run.get_task_instance("report_failures").state) == "failed"
    assert ledger_entry(negative)["outcome"] == "escalated"
    assert thread_posts(stack, negative) == []
    [dm] = stack.sandbox.dms(DEMO_OPERATOR)[:1]
    assert "negative" in dm["text"]
    assert "• Requested by: <@U0REQUESTER>" in dm["text"]
    alert_posts = [p["text"] for p in stack.sandbox.posts(ALERTS)]
    [fallback] = [t for t in alert_posts if "could not DM" in t]
    assert f"{GONE} (user_disabled)" in fallback
    assert "negative" in fallback
    # The operator who could be told also hears that the run failed (the DAG's failure alert).
    assert any(
        "CreditBot failed" in d["text"] and "report_failures" in d["text"]
        for d in stack.sandbox.dms(DEMO_OPERATOR)
    )


def test_escalation_that_reaches_no_one_fails_the_run_after_the_ledger(dag, stack, capfd, caplog):
    stack.use_settings(products=[fixed_result_rule()], operators=["U0NOSUCHUSER"])
    negative = _post(stack, f"<{HOST}/looks/902|spend>")

    dag_run = _run(dag)

    assert str(dag_run.state) == "failed"
    assert str(dag_run.get_task_instance("record_ledger").state) == "success"
    assert ledger_entry(negative)["outcome"] == "escalated"
    assert "undelivered" not in ledger_entry(negative)
    assert stack.sandbox.dms() == []
    output = "".join(capfd.readouterr()) + caplog.text
    assert "reached nobody" in output
    assert "U0NOSUCHUSER (user_not_found)" in output

    # Nothing is redone: the next run has nothing to do and is green again.
    stack.sandbox.reset_calls()
    assert str(_run(dag).state) == "success"
    assert [c["method"] for c in stack.sandbox.calls(api="slack")] == ["auth.test", "conversations.history"]
