"""credit_bot.slack.post against the sandbox with the real slack_sdk: a reply lands in its thread, and a
reply whose parent was deleted meanwhile (Slack then posts it top-level) is taken back and raised."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient

from credit_bot import slack
from harness import PROJECT_ROOT
from harness.sandbox import Sandbox

CHANNEL = "C0CREDITTEST"
SCENARIO = PROJECT_ROOT / "include" / "sandbox" / "scenarios" / "basic.json"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with Sandbox.from_scenario(SCENARIO) as sb:
        yield sb


@pytest.fixture
def client(sandbox: Sandbox) -> WebClient:
    return WebClient(token=sandbox.slack_token, base_url=sandbox.slack_base_url)


def top_level(client: WebClient) -> list[str]:
    return [m["ts"] for m in client.conversations_history(channel=CHANNEL)["messages"]]


def test_a_reply_lands_in_its_thread(sandbox: Sandbox, client: WebClient) -> None:
    parent = sandbox.add_message(CHANNEL, "credit please")
    reply = slack.post(client, channel=CHANNEL, thread_ts=parent, text="Approved, $1.00, exceptions")
    assert [p["thread_ts"] for p in sandbox.posts(CHANNEL) if p["ts"] == reply] == [parent]
    assert reply not in top_level(client)


def test_a_reply_to_a_deleted_parent_is_taken_back_and_raised(sandbox: Sandbox, client: WebClient) -> None:
    parent = sandbox.add_message(CHANNEL, "credit please")
    sandbox.delete_message(CHANNEL, parent)  # after the bot read it, before it answered
    before = top_level(client)
    with pytest.raises(slack.ReplyNotThreaded, match=rf"message {parent} in {CHANNEL} was deleted"):
        slack.post(client, channel=CHANNEL, thread_ts=parent, text="Approved, $1.00, exceptions")
    assert top_level(client) == before  # the amount is not left in the channel
    assert [c["method"] for c in sandbox.calls(api="slack")][-3:-1] == ["chat.postMessage", "chat.delete"]


def test_a_dm_is_not_a_thread_reply(sandbox: Sandbox, client: WebClient) -> None:
    dm = client.conversations_open(users="U0OPERATOR")["channel"]["id"]
    ts = slack.post(client, channel=dm, text="escalated")
    assert [p["ts"] for p in sandbox.dms("U0OPERATOR")] == [ts]
