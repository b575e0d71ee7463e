"""Full runs of the credit_bot DAG with a notebook shaped like the team's own (``dag.test()``, sandbox).

The team's file has an untagged parameters cell, displays DataFrames and plots, and ends with
``credit_amount = output_df['credit'].sum()`` (a numpy scalar); it exposes no ``fraud_spend``, so
the fraud spend the requester states next to the link is the check on its amount.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from harness import PROJECT_ROOT
from harness.testing.flows import CHANNEL, HOST, ledger_entry, team_rule, thread_posts

pytestmark = pytest.mark.integration

MIXED_NOTEBOOK = PROJECT_ROOT / "tests" / "data" / "mixed_parameters_cell.ipynb"


def run_dag(dag, **conf):
    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False, **conf}
    return dag.test(run_conf=params)


def _dm_for(stack, ts: str) -> str:
    [dm] = [d["text"] for d in stack.sandbox.dms() if f"p{ts.replace('.', '')}" in d["text"]]
    return dm


def test_team_shaped_notebook_answers_and_stated_spend_is_checked(dag, stack, post, caplog):
    stack.use_settings(max_attempts=1, products=[team_rule()])
    answered = {
        post(f"Credit request acme\nFraud spend: <{HOST}/looks/921|$1,500.00>"): "$1,414.40",
        post(f"integer credits <{HOST}/looks/922|Look 922>"): "$155.00",  # a label that is not money
        post(f"<{HOST}/looks/923>"): "$0.30",
        post(f"Fraud spend: <{HOST}/looks/922|$155.00>"): "$155.00",  # equal is not above
        post(f"two: <{HOST}/looks/921|$2,000> and <{HOST}/looks/922|$200>"): "$1,569.40",
    }
    above_label = post(f"Fraud spend: <{HOST}/looks/921|$1,414.39>")
    above_line = post(f"Fraud spend: $100.00 <{HOST}/looks/922>")
    failing = post(f"<{HOST}/looks/924>")

    dag_run = run_dag(dag)
    assert str(dag_run.state) == "failed"  # look 924's notebook task failed (after the ledger)

    for ts, amount in answered.items():
        assert thread_posts(stack, ts) == [f"Approved, {amount}, exceptions"]
    for ts in (above_label, above_line, failing):
        assert thread_posts(stack, ts) == []
        assert ledger_entry(ts)["outcome"] == "escalated"
    assert ledger_entry(next(iter(answered)))["amount"] == "1414.40"
    label_dm = _dm_for(stack, above_label)
    assert "the credit $1,414.40 the notebook computed" in label_dm
    assert "above the fraud spend $1,414.39 stated in the request (the link's label)" in label_dm
    line_dm = _dm_for(stack, above_line)
    assert "the credit $155.00" in line_dm
    assert "$100.00 stated in the request (the text on the link's line)" in line_dm
    # The notebook error names the failing cell as the team numbers it, and the exception's first line.
    assert "failed in cell 7: AttributeError: 'NoneType' object has no attribute 'group'" in _dm_for(
        stack, failing
    )
    assert len([d for d in stack.sandbox.dms() if d["metadata"]]) == 3
    assert [d for d in stack.sandbox.dms() if not d["metadata"]] == []  # the DMs told it: no run alert

    # The run_notebook task log says what CreditBot did to the notebook.
    assert "cell 3 declares looker, so CreditBot tagged it in its copy" in caplog.text
    # The SQL went in right after the team's own cell 3 (index 2), which therefore did not overwrite it.
    executed = sorted(Path(stack.output_dir).rglob(f"{CHANNEL}-{above_label}-0.ipynb"))
    cells = nbformat.read(executed[-1], as_version=4).cells
    assert cells[3].metadata["tags"] == ["injected-parameters"]
    assert "CREDITS=1234.5678" in cells[3].source
    outputs = [o for c in cells for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plot came out as it does by hand


def test_notebook_without_a_parameters_cell_fails_the_run_once_at_fetch(dag, stack, post, capfd):
    stack.use_settings(products=[{"name": "verify", "pattern": "CREDITS", "notebook": str(MIXED_NOTEBOOK)}])
    for look_id in (921, 922, 923):
        post(f"<{HOST}/looks/{look_id}>")

    dag_run = run_dag(dag)

    assert str(dag_run.state) == "failed"
    fetch = dag_run.get_task_instance("fetch_requests")
    assert str(fetch.state) == "failed"
    assert fetch.try_number == 1  # a setting to fix: not retried
    output = "".join(capfd.readouterr())
    problem = (
        f"product 'verify': notebook {MIXED_NOTEBOOK} cannot run under CreditBot: cell 3: no cell is "
        "tagged `parameters` and cell 3 sets looker but also does other things"
    )
    assert problem in output
    assert "fix: tag cell 3 `parameters`" in output
    # No channel read, no Looker call, no kernel, no DM per request: only the one failure alert.
    assert stack.sandbox.calls(api="looker") == []
    slack = [c["method"] for c in stack.sandbox.calls(api="slack")]
    assert slack == ["chat.postMessage"]
    [alert] = stack.sandbox.dms()
    assert "CreditBot failed" in alert["text"]
    assert not list(Path(stack.output_dir).rglob("*.ipynb"))
    assert json.dumps(stack.sandbox.posts(CHANNEL)).count("Approved") == 0
