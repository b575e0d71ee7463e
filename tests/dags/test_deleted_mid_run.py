"""A request deleted while its run is under way: Slack would post the answer top-level, the bot takes it back.

The sandbox answers a reply to a missing parent as Slack does (success, un-threaded). The fake is
made to delete the request at the moment the bot posts its answer, the one window the bot cannot
see coming; the bot's code runs untouched.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.local import DEMO_OPERATOR
from harness.sandbox.slack_api import SlackApi
from harness.testing.flows import CHANNEL, HOST, fixed_result_rule, ledger_entry

pytestmark = pytest.mark.integration


def run(dag) -> str:
    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False}
    return str(dag.test(run_conf=params).state)


def test_an_answer_for_a_request_deleted_mid_run_is_not_left_in_the_channel(dag, stack, post, monkeypatch):
    stack.use_settings(products=[fixed_result_rule()])
    request = post(f"credit please <{HOST}/looks/901|spend>")
    slack_api: SlackApi = stack.sandbox.slack
    real_post = slack_api._methods["chat.postMessage"]

    def delete_request_first(params: dict[str, Any]) -> dict[str, Any]:
        if params.get("thread_ts") == request and request in slack_api._channels[CHANNEL].messages:
            slack_api.delete_message(CHANNEL, request)
        return real_post(params)

    monkeypatch.setitem(slack_api._methods, "chat.postMessage", delete_request_first)

    run(dag)
    run(dag)  # the next run finds the request gone and closes it

    history = stack.sandbox.slack._history({"channel": CHANNEL})["messages"]
    assert [m["text"] for m in history if m.get("user") == "U0CREDITBOT"] == []
    stray = [p for p in stack.sandbox.posts(CHANNEL) if p["text"].startswith("Approved")]
    assert len(stray) == 1  # posted once (top-level, by Slack) and taken back at once
    assert stray[0]["thread_ts"] is None
    methods = [c["method"] for c in stack.sandbox.calls(api="slack")]
    assert methods.count("chat.delete") == 1
    assert ledger_entry(request)["outcome"] == "deleted"
    # Whatever the operators were told, no DM repeats the amount that must not be shown.
    assert all("4,948.80" not in d["text"] for d in stack.sandbox.dms(DEMO_OPERATOR))
    # Closed without a task of its own, the request leaves no posting marker behind.
    from airflow.models.variable import Variable

    from credit_bot import replies, store

    marker = store.post_marker(CHANNEL, request, replies.REPLY_EVENT_TYPE)
    assert Variable.get(marker, default_var=None) is None
