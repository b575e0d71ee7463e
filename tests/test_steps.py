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


def _executed(path, credit: str) -> str:
    """An executed notebook whose read-out cell holds ``credit_amount`` (a float, as the team's)."""
    import nbformat

    from credit_bot.notebooks import RESULT_MIME

    nb = nbformat.v4.new_notebook()
    readout = nbformat.v4.new_code_cell("# read-out")
    result = {"has_credit_amount": True, "credit_amount": {"type": "float", "value": credit}}
    readout.outputs.append(nbformat.v4.new_output("display_data", data={RESULT_MIME: result}))
    nb.cells.append(readout)
    nbformat.write(nb, str(path))
    return str(path)


@pytest.mark.parametrize(
    ("credits", "amount"),
    [
        pytest.param(["10.005", "20.005"], "30.01", id="two-half-cents-round-once"),
        pytest.param(["0.004", "0.004", "0.004"], "0.01", id="three-fractions-make-a-cent"),
        pytest.param(["12.345"], "12.35", id="one-link-half-up"),
        pytest.param(["4948.8"], "4948.80", id="whole-cents"),
    ],
)
def test_decide_sums_the_links_then_rounds_once(tmp_path, credits: list, amount: str) -> None:
    """README: summed over a request's links, rounded to cents half up once (the soak found each
    link rounded before the sum: $30.02 for the first case)."""
    from decimal import Decimal

    from credit_bot.steps import decide

    jobs = [
        {"link": f"https://x.cloud.looker.com/looks/{i}", "output_nb": _executed(tmp_path / f"{i}.ipynb", c)}
        for i, c in enumerate(credits)
    ]
    resolved = {"status": "ready", "jobs": jobs, "links": [j["link"] for j in jobs]}
    decision = decide(resolved)
    assert decision["action"] == "answer"
    assert decision["amount"] == Decimal(amount)
    assert str(decision["amount"]) == amount
