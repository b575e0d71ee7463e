"""Approval before posting on a real deployment: scheduler, dag-processor, triggerer and LocalExecutor on
PostgreSQL, Socket Mode to the sandbox, setting ``approval`` = "all" (supervised).

* a request's reply waits for the operator's Approve, clicked in the DM through Socket Mode, then is
  posted once, and the DM says who approved;
* while one request waits, a second one posted later is asked, approved and posted; the first,
  across a scheduler and triggerer restart, is then rejected: nothing posted;
* the same approval through Airflow's REST API (the HITL task's hitlDetails) posts the reply;
* a click by someone who is not an approver is refused with an ephemeral message;
* the next credit_bot run merges every decision into the ledger (approved / rejected, by whom).

The tests run in order on one deployment. Latencies (post → approval DM, click → reply) are printed
in the terminal summary.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from harness.testing.approvals import (
    ACME,
    ACME_REPLY,
    APPROVAL_DAG,
    BOLT,
    BOLT_REPLY,
    OPERATOR,
    OPERATOR_DM,
    approval_dm,
    decide_state,
    hitl_path,
    replies,
    run_of,
    supervised,
    updates,
    wait,
    wait_awaiting,
)
from harness.testing.live import DAG_ID, HOST, MANUAL_CHANNEL, SCHEDULED_CHANNEL, TIMINGS, Live

pytestmark = [pytest.mark.deploy, pytest.mark.integration]

OUTSIDER, OUTSIDER_DM = "U0ANALYST", "D0ANALYST"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with supervised(tmp_path_factory.mktemp("deployment-approval"), "LocalExecutor, approval all") as live:
        yield live


# ---- helpers ----------------------------------------------------------------------------------------


def _post_and_ask(live: Live, text: str) -> tuple[str, dict[str, Any], float]:
    """Post a request; wait for its approval DM; (ts, DM, seconds from post to DM)."""
    ts = live.post(SCHEDULED_CHANNEL, text)
    posted = time.monotonic()
    dm = wait(f"approval DM for {ts}", lambda: approval_dm(live, ts), live)
    return ts, dm, time.monotonic() - posted


def _click(live: Live, user: str, channel: str, dm_ts: str, action_id: str) -> dict[str, Any]:
    state = live.stack.sandbox.click(user, channel, dm_ts, action_id, wait=True)
    assert state["status"] == "acked", state  # within Slack's 3 s
    return state


# ---- tests --------------------------------------------------------------------------------------------


def test_supervised_reply_is_posted_once_after_a_click_on_approve(live: Live) -> None:
    ts, dm, to_dm = _post_and_ask(live, ACME)
    TIMINGS["approval: post -> approval DM"] = to_dm
    assert "Proposed reply: " + ACME_REPLY in dm["text"]
    assert [b["action_id"] for blk in dm["blocks"] if blk["type"] == "actions" for b in blk["elements"]] == [
        "credit_bot_approve",
        "credit_bot_reject",
    ]
    run_id = run_of(dm)
    wait_awaiting(live, run_id)
    assert replies(live, ts) == []  # nothing public while it waits

    _click(live, OPERATOR, OPERATOR_DM, dm["ts"], "credit_bot_approve")
    clicked = time.monotonic()
    live.wait_for_reply(SCHEDULED_CHANNEL, ts, timeout=180)
    TIMINGS["approval: click Approve -> reply posted"] = time.monotonic() - clicked

    run = live.deployment.api.wait_for_run(APPROVAL_DAG, run_id, timeout=120)
    assert run["state"] == "success", live.deployment.api.task_instances(APPROVAL_DAG, run_id)
    assert replies(live, ts) == [ACME_REPLY]  # once
    update = wait("DM updated", lambda: updates(live, dm["ts"]), live)
    assert f"Approved by <@{OPERATOR}>" in update[-1]["text"]
    assert not [b for b in update[-1]["blocks"] if b["type"] == "actions"]  # buttons removed
    detail = live.deployment.api.request("GET", hitl_path(run_id))
    assert detail["chosen_options"] == ["Approve"]
    assert detail["params_input"]["slack_user"] == OPERATOR


def test_one_waits_across_restarts_while_a_later_one_is_approved_then_it_is_rejected(
    live: Live,
) -> None:
    first, first_dm, _ = _post_and_ask(live, BOLT)
    first_run = run_of(first_dm)
    wait_awaiting(live, first_run)

    second, second_dm, _ = _post_and_ask(live, ACME)  # asked while the first waits
    _click(live, OPERATOR, OPERATOR_DM, second_dm["ts"], "credit_bot_approve")
    live.wait_for_reply(SCHEDULED_CHANNEL, second, timeout=180)
    assert replies(live, second) == [ACME_REPLY]
    assert decide_state(live, first_run) == "awaiting_input"

    # The scheduler and the triggerer (which holds both the HITL wait and Socket Mode) restart.
    connects = live.stack.sandbox.socket_status()["connects"]
    live.deployment.restart("scheduler")
    live.deployment.restart("triggerer")
    live.deployment.wait_until_healthy()
    assert decide_state(live, first_run) == "awaiting_input"  # nothing lost
    wait(
        "Socket Mode reconnected by the new triggerer",
        lambda: live.stack.sandbox.socket_status()["connects"] > connects,
        live,
    )

    _click(live, OPERATOR, OPERATOR_DM, first_dm["ts"], "credit_bot_reject")
    run = live.deployment.api.wait_for_run(APPROVAL_DAG, first_run, timeout=180)
    assert run["state"] == "success"
    assert replies(live, first) == []  # rejected: nothing public
    update = wait(
        "DM updated", lambda: live.stack.sandbox.updates(channel=OPERATOR_DM, ts=first_dm["ts"]), live
    )
    assert f"Rejected by <@{OPERATOR}>" in update[-1]["text"]


def test_the_same_approval_through_airflows_rest_api(live: Live) -> None:
    ts, dm, _ = _post_and_ask(live, BOLT)
    run_id = run_of(dm)
    wait_awaiting(live, run_id)
    answered = live.deployment.api.request("PATCH", hitl_path(run_id), json={"chosen_options": ["Approve"]})
    assert answered["responded_by"]["name"] == "admin"
    live.wait_for_reply(SCHEDULED_CHANNEL, ts, timeout=180)
    assert replies(live, ts) == [BOLT_REPLY]
    update = wait("DM updated", lambda: updates(live, dm["ts"]), live)
    assert "Approved by admin (in Airflow)" in update[-1]["text"]


def test_a_click_by_someone_not_an_approver_is_refused(live: Live) -> None:
    # In another channel than the settings' one: no credit_bot run takes it.
    ts = live.post(MANUAL_CHANNEL, "Credit request, asked of the wrong person")
    # An approval whose DM went to someone the settings do not list (e.g. removed from 'approvers'
    # since): triggered by hand, as only a test does.
    conf = {
        "channel": MANUAL_CHANNEL,
        "ts": ts,
        "reply": "Approved, $1.00, exceptions",
        "amount": "1.00",
        "label": f"U0REQUESTER @ {ts}",
        "approvers": [OUTSIDER],
    }
    run_id = live.deployment.api.trigger(
        APPROVAL_DAG, conf, dag_run_id=f"approval__{MANUAL_CHANNEL}__{ts}__1"
    )["dag_run_id"]
    dm = wait("DM to the outsider", lambda: approval_dm(live, ts, user=OUTSIDER), live)
    wait_awaiting(live, run_id)

    _click(live, OUTSIDER, OUTSIDER_DM, dm["ts"], "credit_bot_approve")
    refused = wait("ephemeral refusal", lambda: live.stack.sandbox.ephemerals(user=OUTSIDER), live)
    assert "Not taken" in refused[-1]["text"]
    time.sleep(3)
    assert decide_state(live, run_id) == "awaiting_input"  # the click decided nothing
    assert live.thread(MANUAL_CHANNEL, ts) == []
    live.deployment.api.request("PATCH", hitl_path(run_id), json={"chosen_options": ["Reject"]})
    assert live.deployment.api.wait_for_run(APPROVAL_DAG, run_id, timeout=120)["state"] == "success"


def test_retry_now_on_a_failure_dm_starts_the_forced_run_and_answers_with_its_link(live: Live) -> None:
    ts = live.post(SCHEDULED_CHANNEL, f"echo account, October: <{HOST}/looks/105>")  # its notebook fails

    def failure_dm() -> dict[str, Any] | None:
        for dm in live.stack.sandbox.dms(user=OPERATOR):
            if ((dm.get("metadata") or {}).get("event_payload") or {}).get("request_ts") == ts:
                return dm
        return None

    dm = wait("first-failure DM", failure_dm, live, timeout=240)
    assert [b["action_id"] for blk in dm["blocks"] if blk["type"] == "actions" for b in blk["elements"]] == [
        "credit_bot_retry"
    ]
    _click(live, OPERATOR, OPERATOR_DM, dm["ts"], "credit_bot_retry")

    def answer() -> list[dict[str, Any]]:
        return [p for p in live.stack.sandbox.dms(user=OPERATOR) if p.get("thread_ts") == dm["ts"]]

    [reply] = wait("reply under the DM", answer, live)
    assert f"<@{OPERATOR}> started a forced run for this request: " in reply["text"]
    runs = live.deployment.api.dag_runs(DAG_ID)
    [run] = [r for r in runs if r["dag_run_id"].startswith(f"retry_from_slack__{ts}")]
    assert quote(run["dag_run_id"], safe="") in reply["text"]
    assert run["conf"] == {"channel": SCHEDULED_CHANNEL, "message_ts": ts, "force": True}


def test_the_next_run_merges_the_decisions_into_the_ledger(live: Live) -> None:
    api = live.deployment.api
    run_id = api.trigger(DAG_ID, {})["dag_run_id"]
    api.wait_for_run(DAG_ID, run_id, timeout=240)  # red when echo's notebook fails again: by design
    assert live.states(run_id)["record_ledger[-1]#1"] == "success", live.states(run_id)
    book = json.loads(api.request("GET", "/variables/credit_bot_ledger")["value"])
    entries = book["channels"][SCHEDULED_CHANNEL]["live"]["requests"]
    approvals = sorted(
        (e["outcome"], e["approval"]["state"], e["approval"]["by"])
        for e in entries.values()
        if e.get("approval")
    )
    assert approvals == [
        ("answered", "approved", OPERATOR),
        ("answered", "approved", OPERATOR),
        ("answered", "approved", "admin"),
        ("rejected", "rejected", OPERATOR),
    ], entries
