"""A backlog after an outage (60 messages) is worked through across pages and runs, each message once."""

from __future__ import annotations

import json

import pytest

from harness.testing.flows import CHANNEL, HOST, fixed_result_rule, thread_posts

pytestmark = pytest.mark.integration

LINK_REQUEST = "Please provide a Looker link"


def _run(dag) -> str:
    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False}
    return str(dag.test(run_conf=params).state)


def test_sixty_messages_are_worked_through_across_pages_and_runs(dag, stack, post):
    from airflow.models.variable import Variable

    from credit_bot.ledger import LEDGER_VARIABLE

    per_run = 25
    stack.use_settings(
        products=[fixed_result_rule(), {"name": "psms", "pattern": "PSMS", "notebook": None}],
        page_size=15,
        max_requests_per_run=per_run,
    )
    kinds = {}
    for i in range(60):
        if i % 10 == 0:  # 6 Verify requests with a notebook to run
            kinds[post(f"#{i} credit <{HOST}/looks/907|spend>")] = "answer"
        elif i % 10 in (1, 2):  # 12 without a link
            kinds[post(f"#{i} please credit this customer")] = "ask_link"
        else:  # 42 PSMS requests, resolved and ignored
            kinds[post(f"#{i} PSMS <{HOST}/looks/106>")] = "ignore"
    # Slack's tier limit bites on the second page of the first read: absorbed by the retry handler.
    stack.sandbox.inject("slack", "conversations.history", "ratelimited", times=1, retry_after=1)

    runs = []
    for _ in range(4):
        stack.sandbox.reset_calls()
        assert _run(dag) == "success"
        history = stack.sandbox.calls(api="slack", method="conversations.history")
        book = json.loads(Variable.get(LEDGER_VARIABLE))["channels"][CHANNEL]["live"]["requests"]
        runs.append(
            {
                "history_calls": len(history),
                "done": len(book),
                "looker_calls": len(stack.sandbox.calls(api="looker")),
                "posts": len(stack.sandbox.calls(api="slack", method="chat.postMessage")),
            }
        )
        assert all(int(c["params"]["limit"]) <= 15 for c in history)

    # 25 + 25 + 10 requests over three runs; the fourth finds nothing new. It still pages through
    # the channel from the oldest request waiting for a link (15 a page), to see edits adding one.
    assert [r["done"] for r in runs] == [25, 50, 60, 60]
    assert runs[-1] == {"history_calls": 4, "done": 60, "looker_calls": 0, "posts": 0}
    book = json.loads(Variable.get(LEDGER_VARIABLE))["channels"][CHANNEL]["live"]["requests"]
    want = {"answer": "answered", "ask_link": "link_requested", "ignore": "ignored"}
    assert {ts: book[ts]["outcome"] for ts in kinds} == {ts: want[k] for ts, k in kinds.items()}
    for ts, kind in kinds.items():
        posts = thread_posts(stack, ts)
        if kind == "answer":
            assert posts == ["Approved, $12.35, exceptions"]
        elif kind == "ask_link":
            assert [p[: len(LINK_REQUEST)] for p in posts] == [LINK_REQUEST]
        else:
            assert posts == []
    assert all(entry["attempts"] == 1 for entry in book.values())
