"""What Slack was told stands when the run's ledger write was lost: an escalation stays escalated,
an answer stays answered, and nobody is contradicted.

Both found by the 20-minute soak: a Looker 404 escalated a request (the operators got the DM), the
run's ledger write was then refused, and the next run, Looker healthy again, answered the request;
and the mirror case, a request answered, its ledger write lost, and the next run, hitting a Looker
404, escalating it ("could not answer") with the answer in its thread. The write is refused here at
Airflow's Variable API (the infrastructure), the bot's code runs untouched.
"""

from __future__ import annotations

import pytest

from harness.local import DEMO_OPERATOR
from harness.testing.flows import CHANNEL, HOST, fixed_result_rule, ledger_entry, thread_posts

pytestmark = pytest.mark.integration


def escalations(stack) -> list[dict]:
    """The operator's escalation DMs (a failed run's alert is a DM too, without this metadata)."""
    dms = stack.sandbox.dms(DEMO_OPERATOR)
    payloads = [((d.get("metadata") or {}).get("event_payload") or {}, d) for d in dms]
    return [d for payload, d in payloads if payload.get("state") == "escalated"]


@pytest.fixture
def ledger_write_refused(monkeypatch):
    """Airflow refuses every write of the ledger Variable until ``monkeypatch.undo()``."""
    from airflow.sdk import Variable

    from credit_bot import ledger

    real_set = Variable.set

    def refuse_ledger(cls, key, value, *args, **kwargs):
        if key == ledger.LEDGER_VARIABLE:
            raise RuntimeError("the database refused the write")
        return real_set(key, value, *args, **kwargs)

    monkeypatch.setattr(Variable, "set", classmethod(refuse_ledger))
    return monkeypatch


def run(dag) -> str:
    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False}
    return str(dag.test(run_conf=params).state)


def test_an_escalation_whose_ledger_write_was_lost_is_not_answered_by_the_next_run(
    dag, stack, post, ledger_write_refused
):
    from airflow.models.variable import Variable

    from credit_bot import replies, store

    stack.use_settings(products=[fixed_result_rule()])
    request = post(f"credit please <{HOST}/looks/901|spend>")
    stack.sandbox.inject("looker", "GET /looks/{id}", "not_found")
    assert run(dag) == "failed"
    assert len(escalations(stack)) == 1
    ledger_write_refused.undo()

    assert run(dag) == "success"  # Looker answers now: the request would be answerable
    assert thread_posts(stack, request) == []
    assert ledger_entry(request)["outcome"] == "escalated"
    assert "not found" in ledger_entry(request)["last_error"]
    assert len(escalations(stack)) == 1
    marker = store.post_marker(CHANNEL, request, replies.ESCALATION_EVENT_TYPE)
    assert Variable.get(marker, default_var=None) is None  # dropped once the ledger has the outcome


def test_an_answer_whose_ledger_write_was_lost_is_not_escalated_by_the_next_run(
    dag, stack, post, ledger_write_refused
):
    from airflow.models.variable import Variable

    from credit_bot import replies, store

    stack.use_settings(products=[fixed_result_rule()])
    request = post(f"credit please <{HOST}/looks/901|spend>")
    assert run(dag) == "failed"
    [answer] = [p for p in stack.sandbox.posts(CHANNEL) if p.get("thread_ts") == request]
    assert answer["text"].startswith("Approved, $")
    ledger_write_refused.undo()

    stack.sandbox.inject("looker", "GET /looks/{id}", "not_found")  # the next run cannot resolve it
    assert run(dag) == "success"
    assert thread_posts(stack, request) == [answer["text"]]
    entry = ledger_entry(request)
    assert entry["outcome"] == "answered"
    assert entry["reply_ts"] == answer["ts"]
    assert f"${entry['amount']}" in answer["text"].replace(",", "")
    assert escalations(stack) == []
    for kind in (replies.REPLY_EVENT_TYPE, replies.LINK_REQUEST_EVENT_TYPE, replies.ESCALATION_EVENT_TYPE):
        assert Variable.get(store.post_marker(CHANNEL, request, kind), default_var=None) is None


def test_a_link_request_marker_left_by_a_lost_run_goes_with_the_answer(
    dag, stack, post, ledger_write_refused
):
    """A post without a link is asked for one, that run's ledger write is lost, the requester edits
    the link in: the answer's run drops the link request's marker too (the soak found them left)."""
    from airflow.models.variable import Variable

    from credit_bot import replies, store

    stack.use_settings(products=[fixed_result_rule()])
    request = post("credit please, the spend is in the usual Look")
    assert run(dag) == "failed"
    [ask] = [p for p in stack.sandbox.posts(CHANNEL) if p.get("thread_ts") == request]
    marker = store.post_marker(CHANNEL, request, replies.LINK_REQUEST_EVENT_TYPE)
    assert Variable.get(marker, default_var=None) == store.POSTED + ask["ts"]
    ledger_write_refused.undo()

    stack.sandbox.edit_message(CHANNEL, request, f"credit please <{HOST}/looks/901|spend>")
    assert run(dag) == "success"
    assert ledger_entry(request)["outcome"] == "answered"
    assert Variable.get(marker, default_var=None) is None
