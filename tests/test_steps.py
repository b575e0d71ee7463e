"""Pure parts of the task bodies: the run note's summary line."""

from __future__ import annotations

import pytest

from credit_bot.steps import run_summary


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


@pytest.mark.parametrize(
    ("value", "configured", "dry_run"),
    [
        pytest.param(None, True, True, id="as-configured-dry"),
        pytest.param(None, False, False, id="as-configured-live"),
        pytest.param("dry_run", False, True, id="form-dry-run"),
        pytest.param("live", True, False, id="form-live"),
        pytest.param(True, False, True, id="rest-true"),
        pytest.param(False, True, False, id="rest-false"),
    ],
)
def test_dry_run_param(value, configured: bool, dry_run: bool) -> None:
    from credit_bot.steps import dry_run_choice

    assert dry_run_choice(value, configured) is dry_run


@pytest.mark.parametrize("value", ["yes", "", 1, 0])
def test_dry_run_param_rejects_anything_else(value) -> None:
    from credit_bot.settings import SettingsError
    from credit_bot.steps import dry_run_choice

    with pytest.raises(SettingsError, match="'dry_run' param"):
        dry_run_choice(value, True)
