"""Runs started by Slack events work on the message the event carried; the cron path still reads history.

``dag.test()`` cannot make Airflow asset events, so the DAG's reading of its run's
``triggering_asset_events`` is given the trigger's own payload (``events.classify`` and
``events.carry_message`` on the message as Slack's event carries it): everything from there on
(fetch_requests, the notebook, the reply, the ledger) runs for real against the sandbox.
"""

from __future__ import annotations

from typing import Any

import pytest

from credit_bot import events
from harness.testing.flows import CHANNEL, HOST, fixed_result_rule, ledger_entry, thread_posts

pytestmark = pytest.mark.integration

REPLY = "Approved, $4,948.80, exceptions"


def run(dag) -> str:
    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False}
    return str(dag.test(run_conf=params).state)


def _as_event(ts: str) -> dict[str, Any]:
    """The Events API ``message`` event of a post: the message as Slack holds it, plus its channel."""
    from credit_bot import slack

    message = slack.message(slack.slack_hook().client, CHANNEL, ts)  # the real SDK, over HTTP
    assert message is not None
    return {**message, "type": "message", "channel": CHANNEL}


def _announce(monkeypatch: pytest.MonkeyPatch, event: dict[str, Any]) -> None:
    payload = events.carry_message(events.classify(event, CHANNEL), event)
    assert "message" in payload  # the trigger carried it
    real = events.requests_from_asset_events
    monkeypatch.setattr(
        events, "requests_from_asset_events", lambda _: real([{"extra": {"payload": payload}}])
    )


def test_an_event_run_reads_no_history_and_a_cron_run_after_it_answers_nothing_twice(
    dag, stack, post, monkeypatch
):
    stack.use_settings(products=[fixed_result_rule()])
    ts = post(f"Credit request\nFraud spend: <{HOST}/looks/901|$9,000>")
    with monkeypatch.context() as patched:
        _announce(patched, _as_event(ts))
        stack.sandbox.reset_calls()
        assert run(dag) == "success"  # the event's run
        event_calls = sorted(c["method"] for c in stack.sandbox.calls(api="slack"))
    assert thread_posts(stack, ts) == [REPLY]
    # No read at all: the message came with the event. auth.test is the run's scope check (it reads
    # no message); the reply, 👀 and ✅ are the rest.
    assert event_calls == ["auth.test", "chat.postMessage", "reactions.add", "reactions.add"]
    assert ledger_entry(ts)["outcome"] == "answered"

    stack.sandbox.reset_calls()
    assert run(dag) == "success"  # the */10 run: reads the channel as always, finds it answered
    cron_calls = [c["method"] for c in stack.sandbox.calls(api="slack")]
    assert cron_calls == ["auth.test", "conversations.history"]
    assert thread_posts(stack, ts) == [REPLY]


def test_a_cron_run_then_the_late_event_of_the_same_message_answers_it_once(dag, stack, post, monkeypatch):
    stack.use_settings(products=[fixed_result_rule()])
    ts = post(f"<{HOST}/looks/901>")
    assert run(dag) == "success"  # the cron tick saw it first
    assert thread_posts(stack, ts) == [REPLY]

    with monkeypatch.context() as patched:
        _announce(patched, _as_event(ts))
        stack.sandbox.reset_calls()
        assert run(dag) == "success"  # its event's run, queued behind the cron run
        calls = [c["method"] for c in stack.sandbox.calls(api="slack")]
    assert calls == ["auth.test"]  # the ledger says answered: nothing read, nothing posted
    assert thread_posts(stack, ts) == [REPLY]
