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


# ── decide: the fraud spend the request states ─────────────────────────────────────────────────
def _executed_notebook(path, credit: str) -> str:
    import nbformat

    from credit_bot.notebooks import RESULT_MIME

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("# read-out")
    result = {"has_credit_amount": True, "credit_amount": {"type": "float", "value": credit}}
    cell.outputs.append(nbformat.v4.new_output("display_data", data={RESULT_MIME: result}))
    nb.cells.append(cell)
    nbformat.write(nb, path)
    return str(path)


LINK = "https://credit-sandbox.cloud.looker.com/dashboards/7"


@pytest.mark.parametrize(
    ("credits", "stated", "action", "problem"),
    [
        pytest.param(["60.004", "40"], "100.00", "answer", None, id="tiles-sum-equal-after-rounding"),
        pytest.param(["60", "40.01"], "100", "escalate", "the credit $100.01", id="tiles-sum-above"),
        pytest.param(["179.74"], "179.73", "escalate", "fraud spend $179.73 stated", id="one-cent-above"),
        pytest.param(["179.74"], None, "answer", None, id="nothing-stated"),
    ],
)
def test_decide_checks_the_stated_spend_per_link(tmp_path, credits, stated, action, problem) -> None:
    from credit_bot.links import LABEL
    from credit_bot.steps import decide

    jobs = [
        {
            "link": LINK,
            "output_nb": _executed_notebook(tmp_path / f"{i}.ipynb", credit),
            "stated_spend": {"amount": stated, "where": LABEL} if stated else None,
        }
        for i, credit in enumerate(credits)
    ]
    resolved = {"status": "ready", "links": [LINK], "jobs": jobs}
    decision = decide(resolved)
    assert decision["action"] == action
    if problem:
        assert problem in decision["error"]
        assert f"computed for {LINK}" in decision["error"]
        assert "(the link's label); not posted" in decision["error"]
