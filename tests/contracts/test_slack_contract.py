"""Every Slack answer the sandbox gives — Web API success and error, Socket Mode messages — against Slack's
own specs (the 2021 Web API spec, updated where ``slack_current_docs.json`` says and why).

Plain HTTP as slack_sdk sends it (form POST, bearer token), so the raw JSON is what is checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from harness import PROJECT_ROOT
from harness.sandbox import Sandbox
from harness.testing import flows
from harness.testing.network import loopback_only
from tests.contracts.specs import (
    slack_current_docs,
    slack_error_codes,
    slack_spec,
    validate_block_actions,
    validate_slack,
    validate_slack_socket,
)

SCENARIOS = PROJECT_ROOT / "include" / "sandbox" / "scenarios"
CHANNEL = "C0CREDITTEST"
PARENT = "1764000000.000100"  # a thread parent with one reply in basic.json
LOOKER = "https://credit-sandbox.cloud.looker.com/looks/123"
ICONS = {f"image_{n}": f"https://a.slack-edge.com/bot_{n}.png" for n in (36, 48, 72)}


def seed_shapes(sb: Sandbox) -> dict[str, str]:
    """Messages of every shape the bot meets, each as Slack's docs show it; returns their ts by name."""
    ts = {"parent": PARENT}
    ts["edited"] = sb.add_message(CHANNEL, f"credit <{LOOKER}|$1>")
    sb.edit_message(CHANNEL, ts["edited"], f"credit, edited <{LOOKER}|$1>")
    ts["workflow"] = sb.add_message(
        CHANNEL,
        "",
        user=None,
        subtype="bot_message",
        bot_id="B0WORKFLOW1",
        app_id="A0WORKFLOW",
        bot_profile={
            "id": "B0WORKFLOW1",
            "deleted": False,
            "name": "Credit request form",
            "updated": 1700000000,
            "app_id": "A0WORKFLOW",
            "icons": ICONS,
            "team_id": "T0SANDBOX",
        },
        blocks=[
            {
                "type": "rich_text",
                "block_id": "wf1",
                "elements": [
                    {
                        "type": "rich_text_section",
                        "elements": [
                            {"type": "text", "text": "Requester: "},
                            {"type": "user", "user_id": "U0REQUESTER"},
                            {"type": "text", "text": "\nLook: "},
                            {"type": "link", "url": LOOKER},
                        ],
                    }
                ],
            }
        ],
    )
    ts["share"] = sb.add_message(
        CHANNEL,
        "",
        attachments=[
            {
                "id": 1,
                "is_share": True,
                "is_msg_unfurl": True,
                "from_url": "https://credit-sandbox.slack.com/archives/C0OTHER/p1700000000000100",
                "text": f"credit <{LOOKER}|$1>",
                "fallback": "[November 14th, 2023 10:13 PM] requester: credit",
                "ts": "1700000000.000100",
                "channel_id": "C0OTHER",
                "author_id": "U0REQUESTER",
                "message_blocks": [],
            }
        ],
    )
    doomed = sb.add_message(CHANNEL, "to be deleted")
    sb.add_message(CHANNEL, "a reply keeps the parent as a tombstone", thread_ts=doomed)
    sb.delete_message(CHANNEL, doomed)
    ts["tombstone"] = doomed
    ts["join"] = sb.add_message(
        CHANNEL, "<@U0ANALYST> has joined the channel", user="U0ANALYST", subtype="channel_join"
    )
    return ts


def api(sb: Sandbox, method: str, token: str | None = "bot", **params: Any) -> tuple[int, dict[str, Any]]:  # noqa: S107
    tokens = {"bot": sb.slack_token, "app": sb.slack_app_token, "bad": "xoxb-not-the-sandbox-token"}
    headers = {"Authorization": f"Bearer {tokens[token]}"} if token else {}
    form = {k: json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in params.items()}
    with loopback_only():
        response = requests.post(f"{sb.slack_base_url}{method}", data=form, headers=headers, timeout=5)
    return response.status_code, response.json()


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    params: Callable[[dict[str, str]], dict[str, Any]] = lambda ts: {}
    token: str | None = "bot"
    error: str | None = None  # expected error code; None = success
    status: int = 200
    fault: dict[str, Any] = field(default_factory=dict)  # sandbox.inject kwargs


POST_AS_BOT = {
    "text": "Approved, $1.00, exceptions",
    "metadata": {
        "event_type": "credit_bot_reply",
        "event_payload": {"request_ts": PARENT, "state": "answered"},
    },
}
BUTTONS = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Credit for Acme*: $1.00"}},
    {"type": "context", "elements": [{"type": "plain_text", "text": "notebook attached"}]},
    {
        "type": "actions",
        "block_id": "decision",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Approve"},
                "action_id": "approve",
                "value": "run-1",
                "style": "primary",
            },
            {"type": "button", "text": {"type": "plain_text", "text": "Reject"}, "action_id": "reject"},
        ],
    },
]
BAD_BUTTON = [
    {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": ""}}]}
]
CASES = [
    Case("auth-ok", "auth.test"),
    Case("auth-no-token", "auth.test", token=None, error="not_authed"),
    Case("auth-bad-token", "auth.test", token="bad", error="invalid_auth"),
    Case("auth-app-token", "auth.test", token="app", error="not_allowed_token_type"),
    Case(
        "history-all-shapes",
        "conversations.history",
        lambda ts: {"channel": CHANNEL, "include_all_metadata": 1},
    ),
    Case("history-page", "conversations.history", lambda ts: {"channel": CHANNEL, "limit": 2}),
    Case("history-empty", "conversations.history", lambda ts: {"channel": "C0PRODMEMOS"}),
    Case(
        "history-no-channel",
        "conversations.history",
        lambda ts: {"channel": "C0NOPE"},
        error="channel_not_found",
    ),
    Case(
        "history-bad-oldest",
        "conversations.history",
        lambda ts: {"channel": CHANNEL, "oldest": "yesterday"},
        error="invalid_ts_oldest",
    ),
    Case(
        "history-bad-cursor",
        "conversations.history",
        lambda ts: {"channel": CHANNEL, "cursor": "garbage!"},
        error="invalid_cursor",
    ),
    Case(
        "history-bad-limit",
        "conversations.history",
        lambda ts: {"channel": CHANNEL, "limit": "many"},
        error="invalid_arguments",
    ),
    Case(
        "history-429",
        "conversations.history",
        lambda ts: {"channel": CHANNEL},
        error="ratelimited",
        status=429,
        fault={"kind": "ratelimited", "retry_after": 0},
    ),
    Case(
        "history-503",
        "conversations.history",
        lambda ts: {"channel": CHANNEL},
        error="fatal_error",
        status=503,
        fault={"kind": "server_error", "status": 503},
    ),
    Case(
        "replies-thread",
        "conversations.replies",
        lambda ts: {"channel": CHANNEL, "ts": ts["parent"], "include_all_metadata": 1},
    ),
    Case(
        "replies-tombstone", "conversations.replies", lambda ts: {"channel": CHANNEL, "ts": ts["tombstone"]}
    ),
    Case("replies-single", "conversations.replies", lambda ts: {"channel": CHANNEL, "ts": ts["workflow"]}),
    Case(
        "replies-missing",
        "conversations.replies",
        lambda ts: {"channel": CHANNEL, "ts": "1.000001"},
        error="thread_not_found",
    ),
    Case(
        "replies-internal",
        "conversations.replies",
        lambda ts: {"channel": CHANNEL, "ts": ts["parent"]},
        error="internal_error",
        fault={"kind": "slack_error", "error": "internal_error"},
    ),
    Case("info-channel", "conversations.info", lambda ts: {"channel": CHANNEL}),
    Case("info-missing", "conversations.info", lambda ts: {"channel": "C0NOPE"}, error="channel_not_found"),
    Case("open-dm", "conversations.open", lambda ts: {"users": "U0OPERATOR"}),
    Case("open-dm-return-im", "conversations.open", lambda ts: {"users": "U0OPERATOR", "return_im": 1}),
    Case("open-unknown-user", "conversations.open", lambda ts: {"users": "U0NOBODY"}, error="user_not_found"),
    Case("open-no-users", "conversations.open", error="users_list_not_supplied"),
    Case(
        "open-public-channel",
        "conversations.open",
        lambda ts: {"channel": CHANNEL},
        error="method_not_supported_for_channel_type",
    ),
    Case(
        "post-reply",
        "chat.postMessage",
        lambda ts: {"channel": CHANNEL, "thread_ts": ts["parent"], **POST_AS_BOT},
    ),
    Case(
        "post-reply-to-missing-parent",
        "chat.postMessage",
        lambda ts: {"channel": CHANNEL, "thread_ts": "1700000000.999999", "text": "x"},
    ),
    Case("post-dm", "chat.postMessage", lambda ts: {"channel": "U0OPERATOR", "text": "escalated"}),
    Case("post-no-text", "chat.postMessage", lambda ts: {"channel": CHANNEL}, error="no_text"),
    Case(
        "post-no-channel",
        "chat.postMessage",
        lambda ts: {"channel": "C0NOPE", "text": "x"},
        error="channel_not_found",
    ),
    Case(
        "post-bad-metadata",
        "chat.postMessage",
        lambda ts: {"channel": CHANNEL, "text": "x", "metadata": "{not json"},
        error="invalid_metadata_format",
    ),
    Case(
        "post-429",
        "chat.postMessage",
        lambda ts: {"channel": CHANNEL, "text": "x"},
        error="ratelimited",
        status=429,
        fault={"kind": "ratelimited", "retry_after": 0},
    ),
    Case(
        "post-buttons",
        "chat.postMessage",
        lambda ts: {"channel": "U0OPERATOR", "text": "Approve?", "blocks": BUTTONS},
    ),
    Case(
        "post-bad-blocks",
        "chat.postMessage",
        lambda ts: {"channel": CHANNEL, "text": "x", "blocks": BAD_BUTTON},
        error="invalid_blocks",
    ),
    Case(
        "update-own",
        "chat.update",
        lambda ts: {
            "channel": CHANNEL,
            "ts": ts["buttons"],
            "text": "Approved by operator",
            "blocks": BUTTONS[:2],
        },
    ),
    Case(
        "update-others",
        "chat.update",
        lambda ts: {"channel": CHANNEL, "ts": ts["edited"], "text": "x"},
        error="cant_update_message",
    ),
    Case(
        "update-missing",
        "chat.update",
        lambda ts: {"channel": CHANNEL, "ts": "1.000001", "text": "x"},
        error="message_not_found",
    ),
    Case(
        "update-no-channel",
        "chat.update",
        lambda ts: {"channel": "C0NOPE", "ts": ts["buttons"], "text": "x"},
        error="channel_not_found",
    ),
    Case(
        "update-no-text",
        "chat.update",
        lambda ts: {"channel": CHANNEL, "ts": ts["buttons"], "text": "", "blocks": []},
        error="no_text",
    ),
    Case(
        "update-bad-blocks",
        "chat.update",
        lambda ts: {"channel": CHANNEL, "ts": ts["buttons"], "text": "x", "blocks": BAD_BUTTON},
        error="invalid_blocks",
    ),
    Case(
        "update-edit-window",
        "chat.update",
        lambda ts: {"channel": CHANNEL, "ts": ts["buttons"], "text": "x"},
        error="edit_window_closed",
        fault={"kind": "slack_error", "error": "edit_window_closed"},
    ),
    Case(
        "ephemeral",
        "chat.postEphemeral",
        lambda ts: {"channel": CHANNEL, "user": "U0REQUESTER", "text": "only you", "blocks": BUTTONS},
    ),
    Case(
        "ephemeral-not-in-channel",
        "chat.postEphemeral",
        lambda ts: {"channel": CHANNEL, "user": "U0NOBODY", "text": "x"},
        error="user_not_in_channel",
    ),
    Case(
        "ephemeral-no-channel",
        "chat.postEphemeral",
        lambda ts: {"channel": "C0NOPE", "user": "U0REQUESTER", "text": "x"},
        error="channel_not_found",
    ),
    Case(
        "ephemeral-no-text",
        "chat.postEphemeral",
        lambda ts: {"channel": CHANNEL, "user": "U0REQUESTER"},
        error="no_text",
    ),
    Case(
        "ephemeral-bad-blocks",
        "chat.postEphemeral",
        lambda ts: {"channel": CHANNEL, "user": "U0REQUESTER", "text": "x", "blocks": BAD_BUTTON},
        error="invalid_blocks",
    ),
    Case("permalink", "chat.getPermalink", lambda ts: {"channel": CHANNEL, "message_ts": ts["parent"]}),
    Case(
        "permalink-missing",
        "chat.getPermalink",
        lambda ts: {"channel": CHANNEL, "message_ts": "1.000001"},
        error="message_not_found",
    ),
    Case("delete-own", "chat.delete", lambda ts: {"channel": CHANNEL, "ts": ts["own"]}),
    Case(
        "delete-others",
        "chat.delete",
        lambda ts: {"channel": CHANNEL, "ts": ts["edited"]},
        error="cant_delete_message",
    ),
    Case(
        "delete-missing",
        "chat.delete",
        lambda ts: {"channel": CHANNEL, "ts": "1.000001"},
        error="message_not_found",
    ),
    Case(
        "react", "reactions.add", lambda ts: {"channel": CHANNEL, "timestamp": ts["edited"], "name": "eyes"}
    ),
    Case(
        "react-missing",
        "reactions.add",
        lambda ts: {"channel": CHANNEL, "timestamp": "1.000001", "name": "eyes"},
        error="message_not_found",
    ),
    Case(
        "react-no-channel",
        "reactions.add",
        lambda ts: {"channel": "C0NOPE", "timestamp": ts["edited"], "name": "eyes"},
        error="channel_not_found",
    ),
    Case(
        "react-no-name",
        "reactions.add",
        lambda ts: {"channel": CHANNEL, "timestamp": ts["edited"]},
        error="invalid_name",
    ),
    Case("socket-open", "apps.connections.open", token="app"),
    Case("socket-open-bot-token", "apps.connections.open", error="not_allowed_token_type"),
    Case("socket-open-bad-token", "apps.connections.open", token="bad", error="invalid_auth"),
]


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[Sandbox, dict[str, str]]]:
    with Sandbox.from_scenario(SCENARIOS / "basic.json") as sb:
        ts = seed_shapes(sb)
        # The bot's own reply and reaction, so history and replies show metadata and reactions.
        api(sb, "chat.postMessage", channel=CHANNEL, thread_ts=ts["edited"], **POST_AS_BOT)
        api(sb, "reactions.add", channel=CHANNEL, timestamp=ts["edited"], name="white_check_mark")
        ts["own"] = api(sb, "chat.postMessage", channel=CHANNEL, text="a stray post, deleted by a case")[1][
            "ts"
        ]
        ts["buttons"] = api(sb, "chat.postMessage", channel=CHANNEL, text="Approve?", blocks=BUTTONS)[1]["ts"]
        yield sb, ts


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_sandbox_answers_as_slacks_spec_declares(seeded: tuple[Sandbox, dict[str, str]], case: Case) -> None:
    sb, ts = seeded
    if case.name == "react":
        api(sb, "reactions.add", channel=CHANNEL, timestamp=ts["edited"], name="eyes")  # idempotent set-up
        case = Case(
            "react", "reactions.add", lambda t: {"channel": CHANNEL, "timestamp": t["edited"], "name": "tada"}
        )
    if case.fault:
        sb.inject("slack", case.method, **case.fault)
    status, body = api(sb, case.method, token=case.token, **case.params(ts))
    assert status == case.status, body
    assert body.get("error") == case.error, body
    validate_slack(case.method, body)


def test_history_shows_every_shape_seeded(seeded: tuple[Sandbox, dict[str, str]]) -> None:
    """The table above validated real variety: the shapes are in the answer it checked."""
    sb, ts = seeded
    _, body = api(sb, "conversations.history", channel=CHANNEL, include_all_metadata=1)
    assert {"channel_join", "bot_message", "tombstone"} <= {m.get("subtype") for m in body["messages"]}
    for shape in ("edited", "attachments", "blocks", "reactions", "reply_count", "bot_profile"):
        assert any(m.get(shape) for m in body["messages"]), shape
    _, thread = api(sb, "conversations.replies", channel=CHANNEL, ts=ts["edited"], include_all_metadata=1)
    assert any(m.get("metadata") for m in thread["messages"])


@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(lambda: Sandbox.from_scenario(SCENARIOS / "demo.json"), id="demo"),
        pytest.param(lambda: Sandbox.from_dict(flows.scenario(), base_dir=SCENARIOS), id="dag-tests"),
    ],
)
def test_the_seeded_channels_of_the_demo_and_the_dag_tests(scenario: Callable[[], Sandbox]) -> None:
    with scenario() as sb:
        for channel in sb.scenario.slack.channels:
            status, body = api(sb, "conversations.history", channel=channel["id"], include_all_metadata=1)
            assert status == 200, body
            assert body["ok"], body
            validate_slack("conversations.history", body)
            for parent in (m for m in body["messages"] if m.get("reply_count")):
                _, thread = api(sb, "conversations.replies", channel=channel["id"], ts=parent["ts"])
                validate_slack("conversations.replies", thread)


def test_socket_mode_messages_and_payloads(seeded: tuple[Sandbox, dict[str, str]]) -> None:
    from websockets.sync.client import connect

    sb, _ = seeded
    _, opened = api(sb, "apps.connections.open", token="app")
    with loopback_only(), connect(opened["url"], open_timeout=5) as ws:
        received = [json.loads(ws.recv(timeout=5))]
        # Every event since the sandbox started (seeding, edits, deletions, the bot's own post) is
        # delivered now, then the new post's; the disconnect comes last.
        posted = sb.add_message(CHANNEL, f"credit <{LOOKER}|$1>")
        while received[-1].get("payload", {}).get("event", {}).get("ts") != posted:
            received.append(json.loads(ws.recv(timeout=5)))
            ws.send(json.dumps({"envelope_id": received[-1]["envelope_id"]}))
        sb.socket_disconnect(reason="refresh_requested")
        received.append(json.loads(ws.recv(timeout=5)))
    for message in received:
        validate_slack_socket(message)
    kinds = [m["type"] for m in received]
    assert (kinds[0], kinds[-1]) == ("hello", "disconnect")
    assert set(kinds[1:-1]) == {"events_api"}
    subtypes = {m["payload"]["event"].get("subtype") for m in received[1:-1]}
    assert {None, "message_changed", "message_deleted"} <= subtypes


def test_every_emulated_method_has_a_schema_and_cases() -> None:
    from harness.sandbox.slack_api import SlackApi

    with Sandbox.from_scenario(SCENARIOS / "basic.json") as sb:
        emulated = set(sb.slack._methods)
    assert isinstance(sb.slack, SlackApi)
    known = set(slack_spec()["x-extracted-operations"]) | set(slack_current_docs()["methods"])
    assert emulated <= known, (
        f"re-run tests/contracts/extract.py (or add to slack_current_docs.json): {sorted(emulated - known)}"
    )
    for method in emulated:
        errors = {c.error for c in CASES if c.method == method}
        assert None in errors, f"{method}: no success case"
        assert errors - {None}, f"{method}: no error case"


@pytest.mark.parametrize(
    ("method", "body", "why"),
    [
        pytest.param(
            "conversations.history",
            {
                "ok": True,
                "messages": [{"type": "message", "text": "x"}],
                "has_more": False,
                "pin_count": 0,
                "channel_actions_ts": None,
                "channel_actions_count": 0,
            },
            "ts",
            id="message-without-ts",
        ),
        pytest.param(
            "conversations.history",
            {"ok": True, "messages": [], "has_more": False},
            "pin_count",
            id="history-without-pin-count",
        ),
        pytest.param(
            "chat.postMessage",
            {"ok": False, "error": "no_such_error"},
            "is not one of",
            id="undocumented-error",
        ),
        pytest.param(
            "chat.postMessage",
            {"ok": True, "channel": CHANNEL, "ts": "1.1", "message": {}},
            "ts",
            id="bad-ts",
        ),
        pytest.param(
            "conversations.replies",
            {
                "ok": True,
                "messages": [
                    {
                        "type": "message",
                        "text": "x",
                        "ts": "1700000000.000100",
                        "metadata": {"event_type": "x"},
                    }
                ],
            },
            "event_payload",
            id="metadata-without-payload",
        ),
        pytest.param("apps.connections.open", {"ok": True}, "url", id="socket-url-missing"),
    ],
)
def test_the_validator_rejects_what_the_specs_forbid(method: str, body: dict[str, Any], why: str) -> None:
    with pytest.raises(AssertionError, match=why):
        validate_slack(method, body)


def test_error_codes_are_the_specs_plus_the_documented_ones() -> None:
    codes = slack_error_codes("chat.postMessage")
    assert {"no_text", "channel_not_found", "ratelimited", "invalid_metadata_format"} <= set(codes)
    assert "thread_not_found" not in codes  # Slack documents no such error for chat.postMessage


def test_interactive_envelopes_and_block_actions_payloads(seeded: tuple[Sandbox, dict[str, str]]) -> None:
    """Clicks on a channel message, a DM and an ephemeral message, as the websocket carries them."""
    from websockets.sync.client import connect

    sb, _ = seeded
    _, public = api(sb, "chat.postMessage", channel=CHANNEL, text="Approve?", blocks=BUTTONS)
    _, dm = api(sb, "chat.postMessage", channel="U0OPERATOR", text="Approve?", blocks=BUTTONS)
    _, ephemeral = api(
        sb, "chat.postEphemeral", channel=CHANNEL, user="U0OPERATOR", text="Retry?", blocks=BUTTONS
    )
    clicks = [
        ("U0REQUESTER", CHANNEL, public["ts"], "reject"),
        ("U0OPERATOR", dm["channel"], dm["ts"], "approve"),
        ("U0OPERATOR", CHANNEL, ephemeral["message_ts"], "approve"),
    ]
    _, opened = api(sb, "apps.connections.open", token="app")
    received: list[dict[str, Any]] = []
    with loopback_only(), connect(opened["url"], open_timeout=5) as ws:
        json.loads(ws.recv(timeout=5))  # hello
        for user, channel, message_ts, action_id in clicks:
            envelope_id = sb.click(user, channel, message_ts, action_id)["envelope_id"]
            while True:  # events of earlier tests may be redelivered first: ack them on the way
                message = json.loads(ws.recv(timeout=5))
                ws.send(json.dumps({"envelope_id": message["envelope_id"]}))
                if message["type"] == "interactive":
                    break
            assert message["envelope_id"] == envelope_id
            received.append(message)
            assert sb.wait_interaction(envelope_id)["status"] == "acked"
    for message in received:
        assert validate_slack_socket(message) == "slack_current_docs.json#socket_mode/interactive"
    assert [m["payload"]["container"]["is_ephemeral"] for m in received] == [False, False, True]
    assert received[1]["payload"]["channel"]["name"] == "directmessage"


def good_click() -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": "U0OPERATOR", "username": "operator", "name": "operator", "team_id": "T0SANDBOX"},
        "api_app_id": "A0CREDITBOT",
        "token": "fake",
        "container": {
            "type": "message",
            "message_ts": "1764000000.000100",
            "channel_id": "D0OPERATOR",
            "is_ephemeral": False,
        },
        "trigger_id": "123.456.abcdef",
        "team": {"id": "T0SANDBOX", "domain": "credit-sandbox"},
        "channel": {"id": "D0OPERATOR", "name": "directmessage"},
        "message": {"type": "message", "text": "Approve?", "ts": "1764000000.000100"},
        "response_url": "http://127.0.0.1:1/slack/actions/T0SANDBOX/1/x",
        "actions": [
            {
                "action_id": "approve",
                "block_id": "decision",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": "run-1",
                "type": "button",
                "action_ts": "1764000001.000100",
            }
        ],
    }


def _without(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda payload: payload.pop(key)


@pytest.mark.parametrize(
    ("spoil", "why"),
    [
        pytest.param(_without("message"), "message", id="message-container-without-message"),
        pytest.param(_without("response_url"), "response_url", id="no-response-url"),
        pytest.param(lambda p: p["actions"][0].pop("action_id"), "action_id", id="action-without-id"),
        pytest.param(lambda p: p["actions"][0].update(style="green"), "green", id="unknown-style"),
        pytest.param(lambda p: p["container"].pop("is_ephemeral"), "is_ephemeral", id="container-incomplete"),
        pytest.param(lambda p: p.update(type="view_submission"), "block_actions", id="other-type"),
    ],
)
def test_the_block_actions_schema_rejects(spoil: Callable[[dict[str, Any]], Any], why: str) -> None:
    payload = good_click()
    validate_block_actions(payload)
    spoil(payload)
    with pytest.raises(AssertionError, match=why):
        validate_block_actions(payload)


def test_block_kit_is_checked_on_every_message_and_envelopes_need_their_fields() -> None:
    bad_button = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Go"},
        "action_id": "go",
        "style": "green",
    }
    history = {
        "ok": True,
        "messages": [
            {
                "type": "message",
                "text": "x",
                "ts": "1764000000.000100",
                "blocks": [{"type": "actions", "block_id": "b", "elements": [bad_button]}],
            }
        ],
        "has_more": False,
        "pin_count": 0,
        "channel_actions_ts": None,
        "channel_actions_count": 0,
    }
    with pytest.raises(AssertionError):
        validate_slack("conversations.history", history)
    history["messages"][0]["blocks"][0]["elements"][0]["style"] = "danger"
    validate_slack("conversations.history", history)
    with pytest.raises(AssertionError, match="accepts_response_payload"):
        validate_slack_socket({"type": "interactive", "envelope_id": "e", "payload": good_click()})
    with pytest.raises(AssertionError, match="unknown type"):
        validate_slack_socket({"type": "slash_commands", "envelope_id": "e", "payload": {}})
