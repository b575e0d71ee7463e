"""credit_bot.tasks.report: which request tasks fail the run, and how the failure names them."""

from __future__ import annotations

import pytest

from credit_bot.tasks.report import failed_request_tasks


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
