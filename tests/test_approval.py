"""Tests for credit_bot.approval: handing a reply over, the decisions the ledger merges, the DM's shape,
the HITL operator's timeout. The Slack and Airflow sides: tests/deploy/test_approval_deployment.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from credit_bot import approval, ledger
from credit_bot.settings import Settings
from credit_bot.store import MemoryStore, post_marker

CHANNEL = "C0CREDITTEST"
NOW = datetime.now(UTC).timestamp()
TS, LATER_TS = f"{NOW - 60:.6f}", f"{NOW - 30:.6f}"  # inside the ledger's retention
SETTINGS = Settings(
    channel=CHANNEL,
    dry_run=False,
    operators=("U0OPERATOR",),
    looker_hosts=("h",),
    approval="all",
    approval_timeout_hours=6,
)
REQUEST = {"channel": CHANNEL, "ts": TS, "user": "U0REQUESTER", "attempt": 2}


def _handed_over() -> dict[str, Any]:
    decision = {
        "amount": Decimal("10226.35"),
        "links": ["L"],
        "notebooks": ["/o/n.ipynb"],
        "amount_parts": "sms",
    }
    outcome = {"ts": TS, "dry_run": False, "attempts": 2, "links": ["L"]}
    # What post_results makes of the answer action's return value: the request's outcome, updated.
    return {**outcome, **approval.hand_over(REQUEST, SETTINGS, decision, "https://slack/p")}


def test_hand_over_posts_nothing_and_names_the_approval_run() -> None:
    outcome = _handed_over()
    assert outcome["outcome"] == ledger.AWAITING_APPROVAL
    assert outcome["approval"]["state"] == approval.WAITING
    assert outcome["status"] == "awaiting approval $10,226.35"
    run = outcome["approval_run"]
    assert run["trigger_run_id"] == f"approval__{CHANNEL}__{TS}__2"  # one per request and attempt
    assert run["conf"]["reply"] == "Approved, $10,226.35, exceptions"
    assert run["conf"]["approvers"] == ["U0OPERATOR"]  # the operators, when no approvers are set
    assert run["conf"]["timeout_hours"] == 6
    assert approval.to_trigger([outcome, {"ts": "1", "outcome": "answered"}, None]) == [run]  # type: ignore[list-item]


def test_the_ledger_keeps_the_approval_but_not_the_trigger_kwargs() -> None:
    book = ledger.empty()
    ledger.record(book, channel=CHANNEL, dry_run=False, outcomes=[_handed_over()], newest_ts=None)
    entry = book["channels"][CHANNEL]["live"]["requests"][TS]
    assert entry["outcome"] == ledger.AWAITING_APPROVAL
    assert "approval_run" not in entry
    assert entry["approval"]["state"] == "waiting"


@pytest.mark.parametrize(
    ("decided", "outcome", "error"),
    [
        pytest.param(
            {"state": "approved", "by": "U0OPERATOR", "via": "slack", "reply_ts": "9.1", "amount": "5.00"},
            ledger.ANSWERED,
            None,
            id="approved",
        ),
        pytest.param(
            {"state": "rejected", "by": "U0OPERATOR", "reason": "dup"}, ledger.REJECTED, None, id="rejected"
        ),
        pytest.param({"state": "timed_out"}, ledger.ESCALATED, "no approver decided", id="timed-out"),
    ],
)
def test_a_decision_becomes_the_ledger_outcome(
    decided: dict[str, Any], outcome: str, error: str | None
) -> None:
    found = approval.outcome_of(CHANNEL, TS, decided)
    assert found["outcome"] == outcome
    assert found["approval"]["state"] == decided["state"]
    assert (found["last_error"] or None) == error or error in found["last_error"]
    # record_ledger drops the decision Variable and the request's posting markers once written.
    assert approval.decision_variable(CHANNEL, TS) in found["markers"]
    assert post_marker(CHANNEL, TS, "credit_bot_reply") in found["markers"]


def test_decided_outcomes_reads_only_the_waiting_requests() -> None:
    asked: list[str] = []

    class Watched(MemoryStore):
        def get(self, key: str) -> str | None:
            asked.append(key)
            return super().get(key)

    store = Watched({approval.decision_variable(CHANNEL, TS): json.dumps({"state": "rejected", "by": "U0X"})})
    book = ledger.empty()
    waiting = {**_handed_over(), "ts": LATER_TS}
    ledger.record(book, channel=CHANNEL, dry_run=False, outcomes=[waiting], newest_ts=None)
    found = approval.decided_outcomes(
        book, SETTINGS, [_handed_over(), {"ts": "5.0", "outcome": "answered"}], store
    )
    assert [o["outcome"] for o in found] == [ledger.REJECTED]
    assert sorted(asked) == sorted(approval.decision_variable(CHANNEL, t) for t in (TS, LATER_TS))
    assert (
        approval.decided_outcomes(book, Settings(channel=CHANNEL, looker_hosts=("h",)), [], store) == []
    )  # dry run


@pytest.mark.parametrize(
    ("result", "state", "by", "via"),
    [
        pytest.param(None, "timed_out", None, None, id="decide-failed"),
        pytest.param({"chosen_options": [], "timedout": True}, "timed_out", None, None, id="timeout"),
        pytest.param(
            {
                "chosen_options": ["Approve"],
                "params_input": {"slack_user": "U0OPERATOR", "reason": ""},
                "responded_by_user": {"id": "admin", "name": "admin"},
                "responded_at": datetime(2026, 5, 1, 10, 2, tzinfo=UTC),
            },
            "approved",
            "U0OPERATOR",
            "slack",
            id="slack-click",
        ),
        pytest.param(
            {
                "chosen_options": ["Reject"],
                "params_input": {"slack_user": "", "reason": "already credited"},
                "responded_by_user": {"id": "7", "name": "alice"},
                "responded_at": "2026-05-01T10:02:00+00:00",
            },
            "rejected",
            "alice",
            "airflow",
            id="required-actions",
        ),
    ],
)
def test_decision_of_the_hitl_result(result: Any, state: str, by: str | None, via: str | None) -> None:
    decided = approval.decision_of(result)
    assert decided["state"] == state
    assert decided.get("by") == by
    assert decided.get("via") == via
    if state == "rejected":
        assert decided["reason"] == "already credited"
        assert (
            "Rejected by alice (in Airflow) at 2026-05-01 10:02 UTC (already credited)"
            in approval.decided_line(decided)
        )


def test_the_dm_shows_the_reply_the_parts_the_notebook_and_two_buttons() -> None:
    params = _handed_over()["approval_run"]["conf"]
    text = approval.approval_text(params, "https://airflow.example.com", "approval__x")
    assert "• Proposed reply: Approved, $10,226.35, exceptions" in text
    assert "• Request: https://slack/p" in text
    assert "• Per mode: sms" in text
    assert "• Executed notebook: /o/n.ipynb" in text
    assert (
        "https://airflow.example.com/dags/credit_bot_approval/runs/approval__x/tasks/decide/required_actions"
        in text
    )
    blocks = approval.approval_blocks(text, approval.button_value("credit_bot_approval", "approval__x"))
    buttons = blocks[1]["elements"]
    assert [b["action_id"] for b in buttons] == ["credit_bot_approve", "credit_bot_reject"]
    assert json.loads(buttons[0]["value"]) == {
        "dag_id": "credit_bot_approval",
        "run_id": "approval__x",
        "task_id": "decide",
    }
    updated = approval.decided_blocks(
        text, {"state": "approved", "by": "U0OPERATOR", "via": "slack", "at": "2026-05-01T10:02:00"}
    )
    assert [b["type"] for b in updated] == ["section", "context"]  # the buttons are gone
    assert "Approved by <@U0OPERATOR> at 2026-05-01 10:02 UTC" in updated[1]["elements"][0]["text"]


def test_reminder_is_due_after_the_configured_minutes() -> None:
    started = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert not approval.remind_due(started, 60, now=started + timedelta(minutes=59))
    assert approval.remind_due(started, 60, now=started + timedelta(minutes=60))


def test_the_hitl_operator_times_out_into_a_result_not_a_failure() -> None:
    op = approval.CreditApprovalOperator(task_id="decide")
    assert op.options == ["Approve", "Reject"]
    assert op.multiple is False
    assert set(op.serialized_params) == {"reason", "slack_user"}  # the form: nothing of the DAG's params
    result = op.execute_complete({}, {"error": "timeout", "error_type": "timeout"})
    assert result == {"chosen_options": [], "timedout": True}
    with pytest.raises(Exception, match="unknown"):
        op.execute_complete({}, {"error": "boom", "error_type": "unknown"})


def test_run_note_mentions_approvals() -> None:
    outcomes = [
        _handed_over(),
        approval.outcome_of(CHANNEL, "2.0", {"state": "approved", "by": "U0OPERATOR"}),
    ]
    assert approval.note(outcomes) == "; approvals: 1 waiting, approved by U0OPERATOR (2.0)"
    assert approval.note([{"ts": "1", "outcome": "answered"}]) == ""
