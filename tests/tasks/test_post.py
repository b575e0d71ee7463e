"""credit_bot.tasks.post: the decision carried out in the Slack sandbox, state in an in-memory store."""

from __future__ import annotations

import pytest

from credit_bot import replies
from credit_bot import store as stores
from credit_bot.model import Action, Outcome, ResolveStatus
from credit_bot.tasks.post import ACTIONS, own_resolved, post_results
from tests.tasks.conftest import request


def _resolved(ts: str, status: ResolveStatus, **fields: object) -> dict:
    base = {"ts": ts, "label": ts, "notebook": {}, "status": status, "links": [], "jobs": []}
    return {**base, "problems": [], "ignored": [], "queries": [], **fields}


def test_every_action_has_its_function() -> None:
    assert set(ACTIONS) == set(Action)


def test_a_request_without_a_link_is_asked_for_one_once(store, run, stack) -> None:
    asked = request(stack, "credit please")
    resolved = _resolved(asked["ts"], ResolveStatus.NO_LINK)

    first = post_results(asked, run, resolved, None, store, {"run_id": "r1", "map_index": 0})
    again = post_results(asked, run, resolved, None, store, {"run_id": "r2", "map_index": 0})

    assert first["outcome"] == Outcome.LINK_REQUESTED
    assert first["status"] == "asked for a link"
    [ask] = [p for p in stack.sandbox.posts(asked["channel"]) if p.get("thread_ts") == asked["ts"]]
    assert "Please provide a Looker link" in ask["text"]
    assert again["reply_ts"] == first["reply_ts"] == ask["ts"]  # the marker in the store: not posted twice
    marker = stores.post_marker(asked["channel"], asked["ts"], replies.LINK_REQUEST_EVENT_TYPE)
    assert store.get(marker) == stores.POSTED + ask["ts"]
    assert marker in first["markers"]
    assert (first["run_id"], first["map_index"], first["snippet"]) == ("r1", 0, "credit please")


def test_a_failed_resolve_is_retried_and_the_operators_told(store, run, stack) -> None:
    asked = request(stack, "credit please")

    outcome = post_results(asked, run, None, "http://log", store)

    assert outcome["outcome"] == Outcome.RETRYING
    assert outcome["status"] == "retrying (attempt 1 of 3)"
    [dm] = stack.sandbox.dms("U0OPERATOR")
    assert "resolving the Looker links failed" in dm["text"]


def test_the_last_attempt_escalates_and_marks_it(store, run, stack) -> None:
    asked = request(stack, "credit please", attempt=3)
    resolved = _resolved(asked["ts"], ResolveStatus.FAILED, problems=["Look 1 was not found"])

    outcome = post_results(asked, run, resolved, None, store)

    assert outcome["outcome"] == Outcome.ESCALATED
    marker = stores.post_marker(asked["channel"], asked["ts"], replies.ESCALATION_EVENT_TYPE)
    assert store.posted(store.get(marker)) == "Look 1 was not found"
    # A later run whose ledger write was lost keeps it escalated, without a second DM.
    dms = len(stack.sandbox.dms("U0OPERATOR"))
    later = post_results(
        {**asked, "attempt": 1}, run, _resolved(asked["ts"], ResolveStatus.NO_LINK), None, store
    )
    assert (later["outcome"], later["last_error"]) == (Outcome.ESCALATED, "Look 1 was not found")
    assert len(stack.sandbox.dms("U0OPERATOR")) == dms


@pytest.mark.parametrize(
    ("present", "map_index", "ts", "found"),
    [
        pytest.param(["a", "b", "c"], 1, "b", True, id="every-resolve-succeeded"),
        pytest.param(["b", "c"], 2, "c", True, id="an-earlier-resolve-failed"),
        pytest.param(["a", "c"], 1, "b", False, id="its-own-resolve-failed"),
        pytest.param([], 2, "c", False, id="every-resolve-failed"),
    ],
)
def test_own_resolved_finds_its_entry_after_gaps(present: list, map_index: int, ts: str, found: bool) -> None:
    """Airflow hands post_results the resolve outputs that exist, in map-index order."""
    outputs = [_resolved(t, ResolveStatus.NO_LINK) for t in present]
    result = own_resolved(outputs, map_index, ts)
    assert (result["ts"] if result else None) == (ts if found else None)
