"""credit_bot.tasks.report: which request tasks fail the run, and how the failure names them."""

from __future__ import annotations

import pytest

from credit_bot.tasks.report import failed_request_tasks, untold_failures


@pytest.mark.parametrize(
    ("states", "failed"),
    [
        pytest.param({"resolve_0": "success", "post_results_0": "success"}, [], id="all-green"),
        pytest.param({"run_notebook_0": "success"}, [], id="retried-then-succeeded-is-success"),
        pytest.param(
            {"resolve_0": "failed", "resolve_1": "success", "run_notebook_12": "upstream_failed"},
            ["resolve[0]", "run_notebook[12]"],
            id="mapped-failures",
        ),
        pytest.param({"resolve": "failed"}, ["resolve"], id="unmapped"),
        pytest.param(
            {"fetch_requests": "failed", "record_ledger": "failed", "report_failures": "running"},
            [],
            id="not-request-tasks",
        ),
        pytest.param({"post_results_x": "failed"}, [], id="not-a-map-index"),
    ],
)
def test_failed_request_tasks(states: dict, failed: list) -> None:
    assert failed_request_tasks(states) == failed


def _done(index: int, outcome: str, **extra: str) -> dict:
    return {"ts": f"1764000000.00010{index}", "map_index": index, "outcome": outcome, **extra}


@pytest.mark.parametrize(
    ("failed", "outcomes", "untold"),
    [
        # A failed notebook whose request was DMed (retrying, then escalated): the DM told it.
        pytest.param([("run_notebook", 0)], [_done(0, "retrying")], [], id="first-failure-dm"),
        pytest.param([("resolve", 1)], [_done(1, "escalated")], [], id="give-up-dm"),
        # The one that tells failed, or nothing was DMed, or the DM reached nobody: the run alert.
        pytest.param([("post_results", 0)], [], ["post_results[0]"], id="post-results-failed"),
        pytest.param([("run_notebook", 0)], [_done(0, "answered")], ["run_notebook[0]"], id="answered"),
        pytest.param(
            [("run_notebook", 0)],
            [_done(0, "escalated", undelivered="could not DM U0GONE (user_disabled)")],
            ["run_notebook[0]"],
            id="undelivered",
        ),
        pytest.param([("run_notebook", 2)], [_done(0, "retrying")], ["run_notebook[2]"], id="other-request"),
        pytest.param([("resolve", None)], [_done(0, "retrying")], ["resolve"], id="unmapped"),
    ],
)
def test_untold_failures(failed: list, outcomes: list, untold: list) -> None:
    assert untold_failures(failed, outcomes) == untold
