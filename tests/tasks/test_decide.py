"""credit_bot.tasks.decide: the decision from executed notebooks: stated spends, the sum rounded once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from credit_bot.tasks.decide import decide


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


@pytest.mark.parametrize(
    ("credits", "amount"),
    [
        pytest.param(["10.005", "20.005"], "30.01", id="two-half-cents-round-once"),
        pytest.param(["0.004", "0.004", "0.004"], "0.01", id="three-fractions-make-a-cent"),
        pytest.param(["0.004"], None, id="rounds-to-zero-is-escalated"),
        pytest.param(["12.345"], "12.35", id="one-link-half-up"),
        pytest.param(["4948.8"], "4948.80", id="whole-cents"),
    ],
)
def test_decide_sums_the_links_then_rounds_once(tmp_path, credits: list, amount: str | None) -> None:
    """README: summed over a request's links, rounded to cents half up once (the soak found each
    link rounded before the sum: $30.02 for the first case)."""

    jobs = [
        {
            "link": f"https://x.cloud.looker.com/looks/{i}",
            "output_nb": _executed_notebook(tmp_path / f"{i}.ipynb", c),
        }
        for i, c in enumerate(credits)
    ]
    resolved = {"status": "ready", "jobs": jobs, "links": [j["link"] for j in jobs]}
    decision = decide(resolved)
    if amount is None:  # no "Approved, $0.00" without a person deciding it
        assert decision["action"] == "escalate"
        assert "a credit of $0.00 is never posted" in decision["error"]
        return
    assert decision["action"] == "answer"
    assert decision["amount"] == Decimal(amount)
    assert str(decision["amount"]) == amount
