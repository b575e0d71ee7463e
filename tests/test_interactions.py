"""Tests for credit_bot.interactions: which clicks are ours, who may click, and the Retry now button.

Clicks end to end (Socket Mode, the REST API, the HITL task): tests/deploy/test_approval_deployment.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from credit_bot import interactions

PAYLOAD: dict[str, Any] = {
    "type": "block_actions",
    "user": {"id": "U0OPERATOR", "username": "operator"},
    "container": {"type": "message", "message_ts": "1.5", "channel_id": "D0OPERATOR", "is_ephemeral": False},
    "channel": {"id": "D0OPERATOR", "name": "directmessage"},
    "actions": [
        {"action_id": "credit_bot_approve", "block_id": "b", "value": '{"run_id":"r"}', "action_ts": "2.0"}
    ],
}


def test_a_block_actions_click_on_our_button_is_kept_small() -> None:
    assert interactions.click_of(PAYLOAD) == {
        "user": "U0OPERATOR",
        "action_id": "credit_bot_approve",
        "value": '{"run_id":"r"}',
        "channel": "D0OPERATOR",
        "message_ts": "1.5",
        "action_ts": "2.0",
    }


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({**PAYLOAD, "type": "view_submission"}, id="not-block-actions"),
        pytest.param({**PAYLOAD, "actions": [{"action_id": "someone_elses"}]}, id="not-our-button"),
        pytest.param({**PAYLOAD, "user": {}}, id="no-user"),
    ],
)
def test_what_is_not_a_click_of_ours_is_ignored(payload: dict[str, Any]) -> None:
    assert interactions.click_of(payload) is None


@pytest.mark.parametrize(
    ("action", "user", "allowed"),
    [
        pytest.param("credit_bot_approve", "U0BOSS", True, id="approver-approves"),
        pytest.param("credit_bot_reject", "U0OPERATOR", False, id="operator-not-approver-rejects"),
        pytest.param("credit_bot_approve", "U0ANALYST", False, id="outsider-approves"),
        pytest.param("credit_bot_retry", "U0OPERATOR", True, id="operator-retries"),
        pytest.param("credit_bot_retry", "U0BOSS", True, id="approver-retries"),
        pytest.param("credit_bot_retry", "U0ANALYST", False, id="outsider-retries"),
        pytest.param("credit_bot_other", "U0BOSS", False, id="unknown-action"),
    ],
)
def test_who_may_click(action: str, user: str, allowed: bool) -> None:
    assert interactions.allowed(action, user, approvers=["U0BOSS"], operators=["U0OPERATOR"]) is allowed


def test_clicks_come_from_the_asset_events_of_the_run() -> None:
    click = interactions.click_of(PAYLOAD)
    events = {"asset": [{"extra": {"click": click, "from_rest_api": True}}, {"extra": {"payload": {}}}]}
    assert interactions.clicks_from_asset_events(events) == [click]
    assert interactions.clicks_from_asset_events(None) == []


def test_retry_now_button_names_the_request() -> None:
    blocks = interactions.retry_blocks("text", "C0CREDITTEST", "1764000000.000100")
    [button] = blocks[1]["elements"]
    assert button["action_id"] == "credit_bot_retry"
    assert json.loads(button["value"]) == {"channel": "C0CREDITTEST", "ts": "1764000000.000100"}
    assert blocks[0]["text"]["text"] == "text"
