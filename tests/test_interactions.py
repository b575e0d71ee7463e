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


# ── a click before decide has parked ────────────────────────────────────────────────────────────
HITL = "/dags/credit_bot_approval/dagRuns/r/taskInstances/decide/-1/hitlDetails"


class _ScriptedApi:
    """Airflow's REST API as a click sees it over time: ``states`` of the decide task, one per poll;
    its HITL detail exists (parked long enough ago) only once the task is awaiting input."""

    def __init__(self, states: list[str | None]) -> None:
        self.states = states
        self.polls = 0

    def request(self, method: str, path: str, **_: Any) -> Any:
        from credit_bot.airflow_api import AirflowApiError

        state = self.states[min(self.polls, len(self.states) - 1)]
        if path.endswith("/decide"):
            self.polls += 1
            if state is None:
                raise AirflowApiError(method, path, 404, "no such task instance")
            return {"state": state}
        if state != "awaiting_input":
            raise AirflowApiError(method, path, 404, "no HITL detail")
        return {"created_at": "2026-01-01T00:00:00Z", "response_received": False}


def test_a_click_that_comes_before_decide_parks_waits_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda _s: None)
    api = _ScriptedApi(["scheduled", "queued", "running", "awaiting_input"])
    detail = interactions._parked(api, {}, HITL)  # type: ignore[arg-type]
    assert detail["response_received"] is False
    assert api.polls == 4  # the 404s while decide was still to run were waited out


@pytest.mark.parametrize("states", [["success"], [None]], ids=["decide-finished", "run-gone"])
def test_a_click_on_a_finished_approval_is_told_at_once(
    monkeypatch: pytest.MonkeyPatch, states: list[str | None]
) -> None:
    from credit_bot.airflow_api import AirflowApiError

    monkeypatch.setattr("time.sleep", lambda _s: None)
    api = _ScriptedApi(states)
    with pytest.raises(AirflowApiError) as raised:
        interactions._parked(api, {}, HITL)  # type: ignore[arg-type]
    assert raised.value.status == 404
    assert api.polls == 1
