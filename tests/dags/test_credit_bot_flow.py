"""Full runs of the credit_bot DAG through Airflow (``dag.test()``) against the sandbox.

Each test posts requests into the sandbox channel, runs the DAG, and asserts the exact Slack
calls the sandbox saw: the thread replies, the operator DMs, and that nothing is posted twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.testing.flows import CHANNEL, HOST, fixed_result_rule, ledger_entry, thread_posts

pytestmark = pytest.mark.integration

LINK_REQUEST = "Please provide a Looker link"


def run_dag(dag, **conf):
    # Every param is passed explicitly: dag.test() keeps the last run's conf in the DAG's params.
    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False, **conf}
    return dag.test(run_conf=params)


def run(dag, **conf):
    return str(run_dag(dag, **conf).state)


def _request_dms(stack):
    """The DMs about one request (they carry its metadata), not the runs' failure alerts."""
    return [d for d in stack.sandbox.dms() if d["metadata"]]


def _failure_alerts(stack):
    return [d["text"] for d in stack.sandbox.dms() if not d["metadata"]]


def _extra_links(run_id: str) -> dict[tuple[str, int], str]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(XComModel).filter(XComModel.run_id == run_id, XComModel.key.like("_link_%")).all()
        )
        return {(r.task_id, r.map_index): XComModel.deserialize_value(r) for r in rows}


def test_answers_each_kind_of_request_once(dag, stack, post):
    look = post(
        f"Credit request acme\nFraud spend: <{HOST}/looks/101|$20,902.40>\n"
        "Ticket: <https://acme.zendesk.com/agent/tickets/1|#1>"
    )
    explore = post(
        f"bolt: <{HOST}/explore/billing/counters_by_billable_item?qid=qBolt01&amp;toggle=fil|$2,389.84>"
    )
    short = post(f"delta via share link <{HOST}/x/qDelta01>")
    dashboard = post(f"<{HOST}/dashboards/7|dashboard>")
    several = post(f"two links: <{HOST}/looks/101|acme> and <{HOST}/explore/billing/v?qid=qBolt01|bolt>")
    psms = post(f"PSMS: <{HOST}/looks/106>")
    no_link = post("please credit this customer, thanks")
    zendesk_only = post("see <https://acme.zendesk.com/agent/tickets/77|#77>")
    join = post("<@U0ANALYST> has joined the channel", user="U0ANALYST", subtype="channel_join")
    other_bot = post("digest", user="U0OTHERBOT", subtype="bot_message", bot_id="B0OTHER")

    assert run(dag) == "success"

    assert thread_posts(stack, look) == ["Approved, $10,226.35, exceptions"]
    assert thread_posts(stack, explore) == ["Approved, $1,283.00, exceptions"]
    assert thread_posts(stack, short) == ["Approved, $1,288.45, exceptions"]
    assert thread_posts(stack, dashboard) == ["Approved, $1,283.00, exceptions"]  # dashboard 7: the bolt tile
    assert thread_posts(stack, several) == ["Approved, $11,509.35, exceptions"]
    for silent in (psms, join, other_bot):
        assert thread_posts(stack, silent) == []
    for asked in (no_link, zendesk_only):
        [text] = thread_posts(stack, asked)
        assert text.startswith(LINK_REQUEST)
    assert stack.sandbox.dms() == []
    assert len(stack.sandbox.calls(api="slack", method="chat.postMessage")) == 7
    # Only the configured Looker host's links were resolved; the Zendesk links never left the bot.
    assert all("zendesk" not in json.dumps(c["params"]) for c in stack.sandbox.calls(api="looker"))
    assert ledger_entry(look)["outcome"] == "answered"
    assert ledger_entry(look)["amount"] == "10226.35"
    # What the requests page in the Airflow UI shows besides the outcome.
    entry = ledger_entry(several)
    assert entry["requester"] == "U0REQUESTER"
    assert entry["snippet"] == "two links: acme and bolt"
    assert entry["run_id"].startswith("manual__")
    assert isinstance(entry["map_index"], int)
    assert [Path(p).name for p in entry["notebooks"]] == [f"C0CREDITTEST-{several}-{i}.ipynb" for i in (0, 1)]
    assert all(Path(p).is_file() for p in entry["notebooks"])
    # The extra links, as the task instances pushed them for the UI (Airflow 3 computes them in the task).
    links = _extra_links(entry["run_id"])
    assert f"/credit-bot/?request={CHANNEL}%3A{several}" in links["post_results", entry["map_index"]]
    notebook_links = [v for (task, _), v in links.items() if task == "run_notebook"]
    run_dir = Path(entry["notebooks"][0]).parent.name
    expected = f"/credit-bot/notebooks/{run_dir}/C0CREDITTEST-{several}-0.ipynb"
    assert any(link.endswith(expected) for link in notebook_links), notebook_links
    assert ledger_entry(psms)["outcome"] == "ignored"
    assert ledger_entry(no_link)["outcome"] == "link_requested"

    stack.sandbox.reset_calls()
    assert run(dag) == "success"
    assert [c["method"] for c in stack.sandbox.calls()] == ["auth.test", "conversations.history"]
    assert len(stack.sandbox.posts(CHANNEL)) == 7


def test_dry_run_posts_nothing_and_live_answers_afterwards(dag, stack, post):
    stack.use_settings(dry_run=True, products=[fixed_result_rule()])
    ts = post(f"<{HOST}/looks/901>")

    assert run(dag) == "success"
    assert stack.sandbox.calls(api="slack", method="chat.postMessage") == []
    assert ledger_entry(ts, mode="dry_run")["outcome"] == "answered"

    assert run(dag) == "success"  # a second dry run does not redo the work
    assert len(stack.sandbox.calls(api="looker", method="GET /looks/{id}")) == 1

    stack.use_settings(dry_run=False, products=[fixed_result_rule()])
    assert run(dag) == "success"
    assert thread_posts(stack, ts) == ["Approved, $4,948.80, exceptions"]


def test_failures_go_to_the_operator_never_to_the_thread(dag, stack, post):
    stack.use_settings(max_attempts=1, products=[fixed_result_rule()])
    cases = {
        post(f"<{HOST}/looks/999>"): "not found in Looker",
        post(f"<{HOST}/looks/902>"): "negative",
        post(f"<{HOST}/looks/903>"): "not a finite number",
        post(f"<{HOST}/looks/904>"): "not an unambiguous dollar amount",
        post(f"<{HOST}/looks/905>"): "gave up after 1 attempts",
        post(f"<{HOST}/looks/906>"): "larger than the fraud spend",
    }
    rounded = post(f"<{HOST}/looks/907>")

    # Red: the notebook of look 905 raised (its task failed), even though its DM went out.
    assert run(dag) == "failed"

    for ts in cases:
        assert thread_posts(stack, ts) == []
        assert ledger_entry(ts)["outcome"] == "escalated"
    assert thread_posts(stack, rounded) == ["Approved, $12.35, exceptions"]  # 12.345 rounds half up
    dms = _request_dms(stack)
    assert _failure_alerts(stack) == []  # each request's DM told it: no run alert on top
    assert {dm["user"] for dm in dms} == {"U0OPERATOR"}
    assert len(dms) == len(cases)
    for ts, problem in cases.items():
        [dm] = [d for d in dms if f"p{ts.replace('.', '')}" in d["text"]]
        assert problem in dm["text"]
        assert "Airflow log:" in dm["text"]


def test_transient_notebook_failure_is_retried_on_later_runs_then_escalated(dag, stack, post):
    stack.use_settings(max_attempts=2, products=[fixed_result_rule()])
    ts = post(f"<{HOST}/looks/905>")

    assert run(dag) == "failed"  # the notebook task failed: red, after the ledger is written
    assert ledger_entry(ts)["outcome"] == "retrying"
    [retrying] = _request_dms(stack)
    assert "tries again at the next run (attempt 1 of 2)" in retrying["text"]

    assert run(dag) == "failed"
    [_, escalated] = _request_dms(stack)
    assert "gave up after 2 attempts" in escalated["text"]
    assert "force=true" in escalated["text"]
    assert ledger_entry(ts)["outcome"] == "escalated"

    assert run(dag) == "success"  # nothing left to do: green again
    assert len(_request_dms(stack)) == 2  # one DM per state change, never repeated
    assert _failure_alerts(stack) == []  # both runs red, but the request's two DMs told it all
    assert thread_posts(stack, ts) == []


def test_single_message_by_permalink_and_force_never_posts_twice(dag, stack, post):
    stack.use_settings(products=[fixed_result_rule()])
    first = post(f"<{HOST}/looks/901>")
    second = post(f"<{HOST}/looks/907>")
    permalink = f"https://credit-sandbox.slack.com/archives/{CHANNEL}/p{second.replace('.', '')}"

    assert run(dag, message_ts=permalink) == "success"
    assert thread_posts(stack, second) == ["Approved, $12.35, exceptions"]
    assert thread_posts(stack, first) == []

    # Forced again: the bot finds its own earlier reply in the thread and does not post another.
    assert run(dag, message_ts=second, channel=CHANNEL, force=True) == "success"
    assert thread_posts(stack, second) == ["Approved, $12.35, exceptions"]


def test_link_added_later_by_edit_or_thread_reply(dag, stack, post):
    stack.use_settings(products=[fixed_result_rule()])
    edited = post("credit please, link to follow")
    replied = post("another one, link to follow")

    assert run(dag) == "success"
    assert thread_posts(stack, edited)[0].startswith(LINK_REQUEST)
    assert run(dag) == "success"  # nothing changed: not asked again
    assert len(thread_posts(stack, edited)) == 1

    stack.sandbox.edit_message(CHANNEL, edited, f"credit please: <{HOST}/looks/901>")
    stack.sandbox.add_message(CHANNEL, f"here: <{HOST}/looks/907>", user="U0REQUESTER", thread_ts=replied)
    assert run(dag) == "success"
    assert thread_posts(stack, edited)[1] == "Approved, $4,948.80, exceptions"
    assert thread_posts(stack, replied)[-1] == "Approved, $12.35, exceptions"


def test_link_replied_in_the_thread_before_the_bot_asked_is_picked_up(dag, stack, post):
    """The requester answers at once, a moment before the bot's ask lands (the soak found such a
    request left waiting for a link it had been given); the thread is read once, not every run."""
    stack.use_settings(products=[fixed_result_rule()])
    hasty = post("credit please, link below")
    stack.sandbox.add_message(CHANNEL, f"here: <{HOST}/looks/907>", user="U0REQUESTER", thread_ts=hasty)
    chatty = post("another one, link to follow")
    stack.sandbox.add_message(CHANNEL, "will send it soon", user="U0REQUESTER", thread_ts=chatty)

    assert run(dag) == "success"  # a new request: its post has no link, so the bot asks
    assert thread_posts(stack, hasty)[0].startswith(LINK_REQUEST)
    assert run(dag) == "success"
    assert thread_posts(stack, hasty)[1:] == ["Approved, $12.35, exceptions"]
    assert ledger_entry(hasty)["outcome"] == "answered"
    assert ledger_entry(chatty)["outcome"] == "link_requested"
    stack.sandbox.reset_calls()
    # The chatty thread was read once already: not again (auth.test is the scope check).
    assert run(dag) == "success"
    assert [c["method"] for c in stack.sandbox.calls(api="slack")] == ["auth.test", "conversations.history"]


def test_slack_rate_limit_and_looker_token_revocation_are_absorbed(dag, stack, post):
    stack.use_settings(products=[fixed_result_rule()])
    ts = post(f"<{HOST}/looks/901>")
    stack.sandbox.inject("slack", "conversations.history", "ratelimited", times=1, retry_after=1)
    stack.sandbox.inject("looker", "GET /looks/{id}", "unauthorized", times=1)

    assert run(dag) == "success"
    assert thread_posts(stack, ts) == ["Approved, $4,948.80, exceptions"]
    assert len(stack.sandbox.calls(api="slack", method="conversations.history")) == 2
    assert len(stack.sandbox.calls(api="looker", method="POST /login")) == 2


@pytest.mark.parametrize(
    ("settings", "drop_connection", "problem"),
    [
        pytest.param("{not json", None, "not valid JSON", id="invalid-settings-json"),
        pytest.param('{"looker_hosts": []}', None, "looker_hosts", id="no-looker-hosts"),
        pytest.param(None, "AIRFLOW_CONN_LOOKER_DEFAULT", "looker_default", id="missing-connection"),
        pytest.param(
            '{"channel": "C0CREDITTEST", "looker_hosts": ["x"], "products": '
            '[{"name": "verify", "pattern": "authy", "notebook": "missing.ipynb"}]}',
            None,
            "does not exist",
            id="missing-notebook",
        ),
    ],
)
def test_settings_errors_fail_the_run_early(dag, stack, post, capfd, settings, drop_connection, problem):
    post(f"<{HOST}/looks/101>")
    if settings is not None:
        os.environ["AIRFLOW_VAR_CREDIT_BOT_SETTINGS"] = settings
    if drop_connection:
        del os.environ[drop_connection]

    dag_run = run_dag(dag)
    assert str(dag_run.state) == "failed"
    output = "".join(capfd.readouterr())
    assert "SettingsError" in output
    assert problem in output
    # Failed at its first try: retrying cannot fix a setting (the task itself has retries).
    assert dag_run.get_task_instance("fetch_requests").try_number == 1
    # Nothing read from Slack; only the failure alert, where the settings still name the operators.
    alerts = ["chat.postMessage"] if drop_connection else []
    assert [c["method"] for c in stack.sandbox.calls(api="slack")] == alerts


def test_an_answer_costs_one_post_and_no_thread_read(dag, stack, post):
    """The common path trusts its posting marker: no conversations.replies (rate-limited hard by Slack)."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    stack.use_settings(products=[fixed_result_rule()])
    ts = post(f"<{HOST}/looks/901>")
    stack.sandbox.reset_calls()

    assert run(dag) == "success"

    assert thread_posts(stack, ts) == ["Approved, $4,948.80, exceptions"]
    methods = [c["method"] for c in stack.sandbox.calls(api="slack")]
    assert sorted(methods) == [
        "auth.test",
        "chat.postMessage",
        "conversations.history",
        "reactions.add",
        "reactions.add",
    ]
    with create_session() as session:  # the run's posting markers are gone once the ledger has it
        assert session.query(Variable).filter(Variable.key.like("credit_bot_posting__%")).count() == 0
    assert "markers" not in ledger_entry(ts)
