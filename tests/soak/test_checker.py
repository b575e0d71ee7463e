"""The soak's checker on hand-made histories: each rule passes a clean history and fails a broken one."""

from __future__ import annotations

import ast
import copy
import json
from typing import Any

import pytest

from harness import PROJECT_ROOT
from harness.soak import checker

CHANNEL = "C0SOAK"
OPERATOR = "U0OPS"
TS = "1764000000.000100"
REPLY_TS = "1764000005.000100"


def _reply(text: str = "Approved, $1,234.57, exceptions", ts: str = REPLY_TS) -> dict[str, Any]:
    return {"channel": CHANNEL, "ts": ts, "text": text, "thread_ts": TS, "metadata": None}


def _dm(state: str, ts: str = "1764000009.000100") -> dict[str, Any]:
    payload = {"channel": CHANNEL, "request_ts": TS, "state": state}
    meta = {"event_type": "credit_bot_escalation", "event_payload": payload}
    return {"channel": f"DM:{OPERATOR}", "user": OPERATOR, "ts": ts, "text": "...", "metadata": meta}


def _ledger(**entry: Any) -> str:
    requests = {TS: entry} if entry else {}
    doc = {"version": 1, "channels": {CHANNEL: {"live": {"watermark": TS, "requests": requests}}}}
    return json.dumps(doc)


def _history(**changes: Any) -> dict[str, Any]:
    request = {
        "key": "r0",
        "kind": "verify",
        "ts": TS,
        "outcomes": ["answered", "escalated"],
        "amount": "1234.57",
        "link_request": "never",
        "deleted": False,
    }
    history = {
        "seed": 7,
        "channel": CHANNEL,
        "operators": [OPERATOR],
        "requests": [request],
        "posts": [_reply()],
        "ledger": _ledger(outcome="answered", amount="1234.57", reply_ts=REPLY_TS, attempts=1),
        "markers": [],
        "faults": [{"kind": "slack post 500", "at": 1.0, "applied": True}],
    }
    history.update(changes)
    return history


def _rules(history: dict[str, Any]) -> list[str]:
    return [v.rule for v in checker.check(history).violations]


def test_a_clean_history_has_no_violation() -> None:
    report = checker.check(_history())
    assert report.violations == []
    assert report.outcomes == {"answered": 1}
    assert report.latencies == [5.0]


LINK_ASK = {"channel": CHANNEL, "ts": REPLY_TS, "thread_ts": TS, "text": "Please provide a Looker link (…)"}


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        pytest.param(
            {"posts": [_reply(), _reply(ts="1764000006.000100")]}, "at most one reply", id="two-replies"
        ),
        pytest.param(
            {"posts": [_reply("Approved, $1,234.56, exceptions")]}, "amount", id="amount-off-by-a-cent"
        ),
        pytest.param({"posts": []}, "answered means replied", id="answered-without-reply"),
        pytest.param(
            {"ledger": _ledger(outcome="retrying", attempts=2), "posts": []},
            "nothing left open",
            id="left-retrying",
        ),
        pytest.param(
            {"ledger": _ledger(outcome="escalated"), "posts": [_reply(), _dm("escalated")]},
            "one terminal outcome",
            id="replied-and-escalated",
        ),
        pytest.param(
            {"ledger": _ledger(outcome="escalated"), "posts": []},
            "escalated means the operators were told",
            id="escalated-silently",
        ),
        pytest.param(
            {
                "ledger": _ledger(outcome="escalated"),
                "posts": [_dm("escalated"), _dm("escalated", "17640.1")],
            },
            "one DM per state change",
            id="two-escalation-dms",
        ),
        pytest.param(
            {"posts": [_reply(), {**LINK_ASK, "ts": "1764000007.000100"}]},
            "no link request for a post with a link",
            id="asked-for-a-link-it-had",
        ),
        pytest.param(
            {"posts": [_reply(), {**_reply("Looker failed: 500"), "ts": "1764000008.000100"}]},
            "nothing else in the thread",
            id="failure-in-thread",
        ),
        pytest.param(
            {"posts": [_reply(), {**_reply(), "thread_ts": None, "ts": "1764000009.000100"}]},
            "nothing top-level",
            id="top-level-post",
        ),
        pytest.param({"ledger": _ledger()}, "expected outcome", id="never-recorded"),
        pytest.param(
            {"ledger": _ledger(outcome="answered", amount="99.00", reply_ts=REPLY_TS)},
            "ledger amount",
            id="ledger-amount",
        ),
        pytest.param(
            {"markers": ["credit_bot_posting__C0SOAK__1__r"]}, "no posting marker left behind", id="marker"
        ),
        pytest.param({"ledger": "{not json"}, "ledger readable", id="ledger-not-json"),
    ],
)
def test_each_rule_fails_a_broken_history(changes: dict[str, Any], rule: str) -> None:
    assert rule in _rules(_history(**changes))


def test_unknown_ledger_entries_and_an_oversized_ledger_are_flagged() -> None:
    doc = json.loads(_history()["ledger"])
    doc["channels"][CHANNEL]["live"]["requests"]["1764000099.000100"] = {"outcome": "answered"}
    doc["padding"] = "x" * (checker.ENTRY_BYTES * 2)
    rules = _rules(_history(ledger=json.dumps(doc)))
    assert "entries only for requests" in rules
    assert "ledger within its bound" in rules


def test_link_requested_needs_its_one_ask_and_a_later_answer_is_fine() -> None:
    request = {
        **_history()["requests"][0],
        "outcomes": ["link_requested"],
        "amount": None,
        "link_request": "once",
    }
    asked = _history(requests=[request], posts=[LINK_ASK], ledger=_ledger(outcome="link_requested"))
    assert _rules(asked) == []
    assert "link request posted" in _rules({**asked, "posts": []})
    twice = [LINK_ASK, {**LINK_ASK, "ts": "1764000006.000100"}]
    assert "at most one link request" in _rules({**asked, "posts": twice})
    added = {**request, "outcomes": ["answered"], "amount": "1234.57", "link_request": "maybe"}
    ask = {**LINK_ASK, "ts": "1764000001.000100"}
    assert _rules(_history(requests=[added], posts=[ask, _reply()])) == []


def test_a_deleted_request_may_stay_unseen_but_never_gets_a_wrong_amount() -> None:
    request = {**_history()["requests"][0], "outcomes": ["unseen", "answered", "deleted"], "deleted": True}
    assert _rules(_history(requests=[request], posts=[], ledger=_ledger())) == []
    wrong = _history(requests=[request], posts=[_reply("Approved, $5.00, exceptions")])
    assert "amount" in _rules(wrong)


def test_a_retry_dm_then_an_answer_is_one_outcome() -> None:
    assert _rules(_history(posts=[_dm("retrying"), _reply()])) == []


def test_summary_and_table_carry_seed_requests_faults_violations() -> None:
    history = _history(posts=[_reply(), _reply(ts="1764000006.000100")])
    result = checker.summary(checker.check(history), history)
    assert {"requests", "faults", "violations", "seed"} <= set(result)
    assert (result["requests"], result["faults"], result["seed"]) == (1, {"slack post 500": 1}, 7)
    text = checker.table(result)
    for shown in ("seed", "at most one reply", "slack post 500"):
        assert shown in text


def test_the_checker_shares_no_code_with_the_bot() -> None:
    tree = ast.parse((PROJECT_ROOT / "harness" / "soak" / "checker.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {m.split(".")[0] for m in imported} <= {
        "__future__",
        "json",
        "re",
        "dataclasses",
        "decimal",
        "typing",
    }


def test_the_history_is_not_modified() -> None:
    history = _history()
    before = copy.deepcopy(history)
    checker.check(history)
    assert history == before


def test_a_top_level_answer_the_bot_took_back_is_counted_not_a_violation() -> None:
    stray = {**_reply(), "thread_ts": None, "ts": "1764000009.000100"}
    history = _history(posts=[_reply(), stray], deleted_posts=[stray["ts"]])
    assert "nothing top-level" not in _rules(history)
    assert checker.check(history).taken_back == 1


def test_a_workflow_form_request_must_name_the_person_the_form_names() -> None:
    form = {**_history()["requests"][0], "kind": "workflow_form", "requester": "U0FORMUSER"}
    named = _ledger(outcome="answered", amount="1234.57", reply_ts=REPLY_TS, requester="U0FORMUSER")
    assert _rules(_history(requests=[form], ledger=named)) == []
    as_bot = _ledger(outcome="answered", amount="1234.57", reply_ts=REPLY_TS, requester="B0WORKFLOW")
    assert _rules(_history(requests=[form], ledger=as_bot)) == ["the requester named"]
