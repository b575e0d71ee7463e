"""Interactivity in the sandbox (issue 31): Block Kit buttons on posts and DMs, chat.update,
chat.postEphemeral, clicks delivered as ``block_actions`` over Socket Mode to the real slack_sdk
SocketModeClient with their acknowledgement recorded, and response_url calls made with slack_sdk's
WebhookClient."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.webhook import WebhookClient

from harness.sandbox import Sandbox, SandboxClient, SandboxControlError
from tests.sandbox.test_sandbox_socket_mode import Recorder, run_client, until

CHANNEL = "C0CREDITTEST"
OPERATOR = "U0OPERATOR"
REQUESTER = "U0REQUESTER"
REQUEST_TS = "1764000000.000100"  # a request in basic.json, posted by U0REQUESTER


def approval_blocks(block_id: str | None = "decision") -> list[dict[str, Any]]:
    """An approval DM as the bot would send it: a section, a context line and two buttons."""
    actions: dict[str, Any] = {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Approve"},
                "action_id": "approve",
                "value": "run-1|1764000000.000100",
                "style": "primary",
            },
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Reject"},
                "action_id": "reject",
                "value": "run-1|1764000000.000100",
                "style": "danger",
            },
        ],
    }
    if block_id is not None:
        actions["block_id"] = block_id
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Credit for Acme*: $179.73"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "<https://example.com|notebook>"}]},
        actions,
    ]


def post_approval_dm(slack: WebClient, user: str = OPERATOR) -> tuple[str, str]:
    """(DM channel id, ts) of an approval DM with buttons."""
    answer = slack.chat_postMessage(channel=user, text="Approve credit for Acme?", blocks=approval_blocks())
    return answer["channel"], answer["ts"]


# ---- blocks on posts -------------------------------------------------------------------------------


def test_blocks_round_trip_with_block_ids_filled_in(sandbox: Sandbox, slack: WebClient) -> None:
    answer = slack.chat_postMessage(channel=OPERATOR, text="fallback", blocks=approval_blocks(block_id=None))
    blocks = answer["message"]["blocks"]
    assert [b["type"] for b in blocks] == ["section", "context", "actions"]
    assert all(b["block_id"] for b in blocks)  # generated where the caller gave none, as Slack does
    assert blocks[2]["elements"][0] == approval_blocks()[2]["elements"][0]
    [dm] = sandbox.dms(OPERATOR)
    assert dm["blocks"] == blocks
    assert sandbox.message(answer["channel"], answer["ts"])["blocks"] == blocks
    # In a channel, history shows the blocks too.
    posted = slack.chat_postMessage(channel=CHANNEL, text="x", blocks=approval_blocks(), thread_ts=REQUEST_TS)
    replies = slack.conversations_replies(channel=CHANNEL, ts=REQUEST_TS)["messages"]
    assert next(m for m in replies if m["ts"] == posted["ts"])["blocks"][2]["block_id"] == "decision"


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"type": "actions", "elements": []}, id="actions-without-elements"),
        pytest.param(
            {"type": "actions", "elements": [{"type": "button", "text": {"type": "mrkdwn", "text": "Go"}}]},
            id="button-text-not-plain",
        ),
        pytest.param(
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "x" * 76}}],
            },
            id="button-text-too-long",
        ),
        pytest.param(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Go"}, "style": "green"}
                ],
            },
            id="button-style-unknown",
        ),
        pytest.param(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "A"}, "action_id": "same"},
                    {"type": "button", "text": {"type": "plain_text", "text": "B"}, "action_id": "same"},
                ],
            },
            id="duplicate-action-id",
        ),
        pytest.param({"type": "section"}, id="section-without-text"),
        pytest.param(
            {"type": "context", "elements": [{"type": "bold", "text": "x"}]}, id="context-bad-element"
        ),
        pytest.param({"text": {"type": "mrkdwn", "text": "x"}}, id="block-without-type"),
    ],
)
def test_invalid_blocks_are_refused(slack: WebClient, broken: dict[str, Any]) -> None:
    with pytest.raises(SlackApiError) as refused:
        slack.chat_postMessage(channel=CHANNEL, text="x", blocks=[broken])
    assert refused.value.response["error"] == "invalid_blocks"


# ---- chat.update -----------------------------------------------------------------------------------


def test_chat_update_replaces_the_bots_dm_in_place(sandbox: Sandbox, slack: WebClient) -> None:
    channel, ts = post_approval_dm(slack)
    decided = [{"type": "section", "text": {"type": "mrkdwn", "text": "Approved by <@U0OPERATOR>"}}]
    answer = slack.chat_update(channel=channel, ts=ts, text="Approved by operator", blocks=decided)
    assert (answer["channel"], answer["ts"], answer["text"]) == (channel, ts, "Approved by operator")
    assert answer["message"]["blocks"][0]["text"]["text"] == "Approved by <@U0OPERATOR>"
    now = sandbox.message(channel, ts)
    assert now["text"] == "Approved by operator"
    assert now["edited"]["user"] == sandbox.scenario.slack.bot_user_id
    [update] = sandbox.updates(channel, ts)
    assert update["via"] == "chat.update"
    assert update["previous_text"] == "Approve credit for Acme?"
    # The post as it was stays in dms(); the DM count does not change.
    assert [d["text"] for d in sandbox.dms(OPERATOR)] == ["Approve credit for Acme?"]


def test_chat_update_keeps_blocks_left_out_and_removes_an_empty_list(
    sandbox: Sandbox, slack: WebClient
) -> None:
    channel, ts = post_approval_dm(slack)
    slack.chat_update(channel=channel, ts=ts, text="text only")
    assert len(sandbox.message(channel, ts)["blocks"]) == 3
    slack.chat_update(channel=channel, ts=ts, text="no buttons", blocks=[])
    assert "blocks" not in sandbox.message(channel, ts)


@pytest.mark.parametrize(
    ("target", "error"),
    [
        pytest.param(REQUEST_TS, "cant_update_message", id="someone-elses-message"),
        pytest.param("1764000000.999999", "message_not_found", id="no-such-message"),
    ],
)
def test_chat_update_refuses(slack: WebClient, target: str, error: str) -> None:
    with pytest.raises(SlackApiError) as refused:
        slack.chat_update(channel=CHANNEL, ts=target, text="hijacked")
    assert refused.value.response["error"] == error


def test_chat_update_of_an_ephemeral_message_is_message_not_found(slack: WebClient) -> None:
    ts = slack.chat_postEphemeral(channel=CHANNEL, user=OPERATOR, text="only you")["message_ts"]
    with pytest.raises(SlackApiError) as refused:
        slack.chat_update(channel=CHANNEL, ts=ts, text="x")
    assert refused.value.response["error"] == "message_not_found"


def test_chat_update_in_a_channel_is_a_message_changed_event(sandbox: Sandbox, slack: WebClient) -> None:
    ts = slack.chat_postMessage(channel=CHANNEL, text="pending", blocks=approval_blocks())["ts"]
    slack.chat_update(channel=CHANNEL, ts=ts, text="decided", blocks=[])
    changed = [e for e in sandbox.socket_envelopes() if e["subtype"] == "message_changed"]
    assert changed


# ---- chat.postEphemeral ----------------------------------------------------------------------------


def test_ephemeral_is_seen_by_one_user_and_never_in_history(sandbox: Sandbox, slack: WebClient) -> None:
    before = slack.conversations_history(channel=CHANNEL)["messages"]
    answer = slack.chat_postEphemeral(
        channel=CHANNEL, user=REQUESTER, text="You may not approve credits.", thread_ts=REQUEST_TS
    )
    assert answer["message_ts"]
    assert slack.conversations_history(channel=CHANNEL)["messages"] == before
    [ephemeral] = sandbox.ephemerals(REQUESTER)
    assert ephemeral["ts"] == answer["message_ts"]
    assert (ephemeral["channel"], ephemeral["text"], ephemeral["thread_ts"]) == (
        CHANNEL,
        "You may not approve credits.",
        REQUEST_TS,
    )
    assert sandbox.ephemerals(OPERATOR) == []
    assert sandbox.posts(CHANNEL) == []


def test_ephemeral_in_a_dm_and_its_errors(make_sandbox: Any) -> None:
    sb = make_sandbox(slack={"channels": [{"id": CHANNEL, "name": "memos", "members": [OPERATOR]}]})
    slack = WebClient(token=sb.slack_token, base_url=sb.slack_base_url)
    channel = slack.conversations_open(users=OPERATOR)["channel"]["id"]
    slack.chat_postEphemeral(channel=channel, user=OPERATOR, text="in your DM")
    no_text: dict[str, Any] = {"channel": CHANNEL, "user": OPERATOR, "text": ""}
    assert [e["channel"] for e in sb.ephemerals(OPERATOR)] == [channel]
    for kwargs, error in [
        ({"channel": CHANNEL, "user": REQUESTER, "text": "x"}, "user_not_in_channel"),  # not a member
        ({"channel": channel, "user": REQUESTER, "text": "x"}, "user_not_in_channel"),  # someone else's DM
        ({"channel": CHANNEL, "user": "U0NOBODY", "text": "x"}, "user_not_in_channel"),
        ({"channel": "C0NOPE", "user": OPERATOR, "text": "x"}, "channel_not_found"),
        (no_text, "no_text"),
    ]:
        with pytest.raises(SlackApiError) as refused:
            slack.chat_postEphemeral(**kwargs)
        assert refused.value.response["error"] == error, kwargs


# ---- clicks over Socket Mode -----------------------------------------------------------------------


def test_click_reaches_the_socket_mode_client_which_acks(sandbox: Sandbox, slack: WebClient) -> None:
    channel, ts = post_approval_dm(slack)
    recorder = Recorder()
    state: dict[str, Any] = {}

    async def body(client: Any) -> None:
        await until(lambda: sandbox.socket_status()["connections"] == 1, "the connection")
        state["click"] = await asyncio.to_thread(sandbox.click, OPERATOR, channel, ts, "approve")
        await until(lambda: any(r.type == "interactive" for r in recorder.requests), "the click")
        state["done"] = await asyncio.to_thread(sandbox.wait_interaction, state["click"]["envelope_id"])

    run_client(sandbox, recorder, body)
    [request] = [r for r in recorder.requests if r.type == "interactive"]
    assert isinstance(request, SocketModeRequest)
    assert request.envelope_id == state["click"]["envelope_id"]
    assert request.accepts_response_payload is False
    payload = request.payload
    assert payload["type"] == "block_actions"
    assert payload["user"] == {
        "id": OPERATOR,
        "username": "operator",
        "name": "operator",
        "team_id": "T0SANDBOX",
    }
    assert payload["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": channel,
        "is_ephemeral": False,
    }
    assert payload["channel"] == {"id": channel, "name": "directmessage"}
    assert payload["message"]["ts"] == ts
    assert payload["message"]["blocks"] == sandbox.message(channel, ts)["blocks"]
    [action] = payload["actions"]
    assert {k: action[k] for k in ("action_id", "block_id", "value", "type", "style")} == {
        "action_id": "approve",
        "block_id": "decision",
        "value": "run-1|1764000000.000100",
        "type": "button",
        "style": "primary",
    }
    assert action["text"] == {"type": "plain_text", "text": "Approve"}
    assert payload["response_url"].startswith(f"{sandbox.url}/slack/actions/T0SANDBOX/")
    assert payload["trigger_id"]
    assert payload["token"]  # the deprecated verification token: a fake value
    assert payload["api_app_id"] == "A0CREDITBOT"

    done = state["done"]
    assert done["status"] == "acked", done
    assert done["acked"]
    assert done["ack_seconds"] < 3.0
    assert not done["user_saw_error"]
    assert sandbox.interaction_payload(done["envelope_id"]) == payload
    assert sandbox.socket_status()["interactions"] == 1


def test_unacked_click_fails_after_the_window(make_sandbox: Any) -> None:
    sb = make_sandbox(slack={"ack_timeout_seconds": 0.3})
    slack = WebClient(token=sb.slack_token, base_url=sb.slack_base_url)
    channel, ts = post_approval_dm(slack)
    recorder = Recorder(ack=lambda request: request.type != "interactive")
    state: dict[str, Any] = {}

    async def body(client: Any) -> None:
        await until(lambda: sb.socket_status()["connections"] == 1, "the connection")
        state["click"] = await asyncio.to_thread(sb.click, OPERATOR, channel, ts, "reject")
        assert state["click"]["status"] == "pending"
        await until(
            lambda: sb.interaction(state["click"]["envelope_id"])["status"] != "pending", "the verdict"
        )

    started = time.monotonic()
    run_client(sb, recorder, body)
    assert time.monotonic() - started >= 0.3
    state_now = sb.interaction(state["click"]["envelope_id"])
    assert state_now["status"] == "failed"
    assert state_now["failure"] == "not_acknowledged"
    assert state_now["user_saw_error"] is True
    assert state_now["acked"] is False
    assert sb.socket_status()["interactions_failed"] == 1
    assert [r.type for r in recorder.requests].count("interactive") == 1  # never redelivered


def test_late_ack_is_still_a_failure(make_sandbox: Any) -> None:
    sb = make_sandbox(slack={"ack_timeout_seconds": 0.2})
    slack = WebClient(token=sb.slack_token, base_url=sb.slack_base_url)
    channel, ts = post_approval_dm(slack)

    class Slow(Recorder):
        async def __call__(self, client: Any, request: SocketModeRequest) -> None:
            if request.type == "interactive":
                await asyncio.sleep(0.5)
            await super().__call__(client, request)

    recorder = Slow()
    state: dict[str, Any] = {}

    async def body(client: Any) -> None:
        await until(lambda: sb.socket_status()["connections"] == 1, "the connection")
        state["click"] = await asyncio.to_thread(sb.click, OPERATOR, channel, ts, "approve")
        await until(lambda: sb.interaction(state["click"]["envelope_id"])["acked"], "the late ack")

    run_client(sb, recorder, body)
    late = sb.interaction(state["click"]["envelope_id"])
    assert (late["status"], late["failure"], late["user_saw_error"]) == ("failed", "late_ack", True)
    assert late["ack_seconds"] >= 0.2


def test_click_without_a_connection_fails_at_once(sandbox: Sandbox, slack: WebClient) -> None:
    channel, ts = post_approval_dm(slack)
    clicked = sandbox.click(OPERATOR, channel, ts, "approve")
    assert (clicked["status"], clicked["failure"], clicked["delivered"]) == ("failed", "no_connection", False)


@pytest.mark.parametrize(
    ("who", "where", "which", "why"),
    [
        pytest.param(OPERATOR, None, "approve_all", "no button with action_id", id="no-such-button"),
        pytest.param(OPERATOR, "1764000000.999999", "approve", "no message", id="no-such-message"),
        pytest.param(OPERATOR, REQUEST_TS, "approve", "no button", id="message-without-buttons"),
        pytest.param("U0NOBODY", None, "approve", "unknown user", id="no-such-user"),
        pytest.param(REQUESTER, None, "approve", "not in", id="someone-elses-dm"),
    ],
)
def test_click_refuses_what_does_not_exist(
    sandbox: Sandbox, slack: WebClient, who: str, where: str | None, which: str, why: str
) -> None:
    channel, ts = post_approval_dm(slack)
    if where == REQUEST_TS:
        channel = CHANNEL
    with pytest.raises(ValueError, match=why):
        sandbox.click(who, channel, where or ts, which)
    assert sandbox.interactions() == []


def test_click_on_an_ephemeral_message(sandbox: Sandbox, slack: WebClient) -> None:
    ts = slack.chat_postEphemeral(channel=CHANNEL, user=OPERATOR, text="Retry?", blocks=approval_blocks())[
        "message_ts"
    ]
    with pytest.raises(ValueError, match="shown to"):
        sandbox.click(REQUESTER, CHANNEL, ts, "approve")
    clicked = sandbox.click(OPERATOR, CHANNEL, ts, "approve")
    payload = sandbox.interaction_payload(clicked["envelope_id"])
    assert payload["container"]["is_ephemeral"] is True
    assert "message" not in payload  # Slack sends no message for an ephemeral container
    assert payload["channel"] == {"id": CHANNEL, "name": "credit_memo_testing"}


# ---- response_url ----------------------------------------------------------------------------------


def clicked_url(sb: Sandbox, user: str, channel: str, ts: str, action_id: str = "approve") -> str:
    return sb.interaction_payload(sb.click(user, channel, ts, action_id)["envelope_id"])["response_url"]


def test_response_url_replace_original_and_ephemeral_answers(sandbox: Sandbox, slack: WebClient) -> None:
    channel, ts = post_approval_dm(slack)
    url = clicked_url(sandbox, OPERATOR, channel, ts)
    hook = WebhookClient(url)
    answer = hook.send(text="Approved by <@U0OPERATOR>", replace_original=True)
    assert (answer.status_code, answer.body) == (200, '{"ok":true}')
    assert sandbox.message(channel, ts)["text"] == "Approved by <@U0OPERATOR>"
    assert "blocks" not in sandbox.message(channel, ts)
    assert sandbox.updates(channel, ts)[-1]["via"] == "response_url"
    hook.send(text="Posting the reply now.")  # default: ephemeral, to the clicking user
    [ephemeral] = sandbox.ephemerals(OPERATOR)
    assert (ephemeral["text"], ephemeral["via"]) == ("Posting the reply now.", "response_url")
    calls = sandbox.response_url_calls(OPERATOR)
    assert [c["effect"] for c in calls] == ["replaced", "ephemeral"]
    assert calls[0]["body"]["replace_original"] is True
    assert (calls[0]["message_ts"], calls[0]["channel"]) == (ts, channel)
    assert sandbox.calls(method="response_url")[0]["status"] == 200


def test_response_url_in_channel_delete_and_limits(sandbox: Sandbox, slack: WebClient) -> None:
    ts = slack.chat_postMessage(
        channel=CHANNEL, text="Retry?", blocks=approval_blocks(), thread_ts=REQUEST_TS
    )["ts"]
    hook = WebhookClient(clicked_url(sandbox, OPERATOR, CHANNEL, ts, "reject"))
    hook.send_dict({"text": "Rejected by operator", "response_type": "in_channel", "thread_ts": REQUEST_TS})
    assert sandbox.posts(CHANNEL)[-1]["text"] == "Rejected by operator"
    assert sandbox.posts(CHANNEL)[-1]["thread_ts"] == REQUEST_TS
    assert hook.send(delete_original=True).status_code == 200
    with pytest.raises(ValueError, match="no message"):
        sandbox.message(CHANNEL, ts)
    assert hook.send(text="3").status_code == 200
    assert hook.send(text="4").status_code == 200
    assert hook.send(text="5").status_code == 200
    sixth = hook.send(text="6")  # "up to 5 times within 30 minutes"
    assert (sixth.status_code, sixth.body) == (404, '{"ok":false,"error":"used_url"}')
    assert WebhookClient(f"{sandbox.url}/slack/actions/T0SANDBOX/1/nope").send(text="x").status_code == 404
    again = slack.chat_postMessage(channel=CHANNEL, text="Retry?", blocks=approval_blocks())["ts"]
    empty = WebhookClient(clicked_url(sandbox, OPERATOR, CHANNEL, again)).send()
    assert empty.status_code == 400
    assert [c["error"] for c in sandbox.response_url_calls()][-3:] == ["used_url", "invalid_url", "no_text"]


# ---- the same over HTTP ----------------------------------------------------------------------------


def test_the_control_api_over_http(sandbox: Sandbox, slack: WebClient) -> None:
    client = SandboxClient(sandbox.url)
    channel, ts = post_approval_dm(slack)
    slack.chat_update(channel=channel, ts=ts, text="still waiting", blocks=approval_blocks())
    slack.chat_postEphemeral(channel=CHANNEL, user=OPERATOR, text="psst")
    assert client.message(channel, ts)["text"] == "still waiting"
    assert [u["via"] for u in client.updates(channel=channel)] == ["chat.update"]
    assert [e["text"] for e in client.ephemerals(user=OPERATOR)] == ["psst"]
    client.set_ack_timeout(0.2)
    clicked = client.click(OPERATOR, channel, ts, "approve")
    assert clicked["ack_timeout"] == 0.2
    assert client.interaction(clicked["envelope_id"])["failure"] == "no_connection"
    assert client.wait_interaction(clicked["envelope_id"])["status"] == "failed"
    assert client.interaction_payload(clicked["envelope_id"])["actions"][0]["action_id"] == "approve"
    assert [i["envelope_id"] for i in client.interactions()] == [clicked["envelope_id"]]
    WebhookClient(clicked["response_url"]).send(text="ok", replace_original=True)
    assert client.response_url_calls(user=OPERATOR)[0]["effect"] == "replaced"
    with pytest.raises(SandboxControlError, match="no button"):
        client.click(OPERATOR, channel, ts, "nope")
