"""credit_bot.tasks.record: the run's summary line, and record_ledger with an in-memory store."""

from __future__ import annotations

import pytest

from credit_bot.tasks.record import run_summary


def _o(outcome: str, amount: str | None = None) -> dict:
    return {"ts": "1764000000.000100", "outcome": outcome, **({"amount": amount} if amount else {})}


@pytest.mark.parametrize(
    ("outcomes", "dry_run", "summary"),
    [
        pytest.param([], False, "Nothing new", id="idle"),
        pytest.param([], True, "Nothing new (dry run)", id="idle-dry-run"),
        pytest.param(
            [_o("answered", "1000.00"), _o("answered", "204.10"), _o("escalated")],
            False,
            "3 requests: 2 answered ($1,204.10 total), 1 escalated",
            id="issue-example",
        ),
        pytest.param(
            [_o("link_requested"), _o("retrying"), _o("ignored"), _o("expired"), _o("deleted")],
            False,
            "5 requests: 1 link requested, 1 retrying, 1 ignored, 1 deleted, 1 expired",
            id="every-other-outcome",
        ),
        pytest.param(
            [_o("answered", "0.10"), _o("answered", "0.20")],
            True,
            "2 requests: 2 answered ($0.30 total) — DRY RUN, nothing posted",
            id="exact-cents-dry-run",
        ),
        pytest.param([_o("answered", "12.35")], False, "1 request: 1 answered ($12.35 total)", id="one"),
    ],
)
def test_run_summary(outcomes: list, dry_run: bool, summary: str) -> None:
    assert run_summary(outcomes, dry_run) == summary


# ── record_ledger with an in-memory store ───────────────────────────────────────────────────────
def test_record_ledger_writes_the_ledger_and_drops_the_markers(store, run, stack) -> None:
    from credit_bot import replies
    from credit_bot.model import Outcome
    from credit_bot.store import post_marker
    from credit_bot.tasks.post import request_markers
    from credit_bot.tasks.record import record_ledger
    from tests.tasks.conftest import request

    answered, unfinished = request(stack, "one"), request(stack, "two")
    markers = request_markers(answered["channel"], answered["ts"])
    store.mark_posted(post_marker(answered["channel"], answered["ts"], replies.REPLY_EVENT_TYPE), "1.5")
    outcome = {
        "ts": answered["ts"],
        "outcome": Outcome.ANSWERED,
        "amount": "12.35",
        "status": "answered $12.35",
        "markers": markers,
        "snippet": "one",
    }
    window = {"newest_ts": unfinished["ts"], "expired": []}

    recorded = record_ledger(run, [answered, unfinished], window, [outcome, None], store)

    assert recorded["summary"] == "2 requests: 1 answered ($12.35 total), 1 retrying"
    assert recorded["counts"] == {"answered": 1, "retrying": 1}
    state = store.ledger()["channels"][answered["channel"]]["live"]
    assert state["watermark"] == unfinished["ts"]
    entry = state["requests"][answered["ts"]]
    assert (entry["outcome"], entry["amount"], entry["snippet"]) == ("answered", "12.35", "one")
    assert not {"status", "markers"} & entry.keys()  # run-only fields stay out of the ledger
    assert (
        state["requests"][unfinished["ts"]]["last_error"] == "post_results did not finish; see its task log"
    )
    assert not any(key.startswith("credit_bot_posting__") for key in store.values)
