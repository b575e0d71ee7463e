"""An escalation whose ledger write was lost stays escalated: the operators are never contradicted.

Found by the 20-minute soak: a Looker 404 escalated a request (the operators got the DM), the run's
ledger write was then refused, and the next run, Looker healthy again, answered the request. The
write is refused here at Airflow's Variable API (the infrastructure), the bot's code runs untouched.
"""

from __future__ import annotations

import pytest

from harness.local import DEMO_OPERATOR
from harness.testing.flows import CHANNEL, HOST, fixed_result_rule, ledger_entry, thread_posts

pytestmark = pytest.mark.integration


def escalations(stack) -> list[dict]:
    """The operator's escalation DMs (a failed run's alert is a DM too, without this metadata)."""
    dms = stack.sandbox.dms(DEMO_OPERATOR)
    payloads = [((d.get("metadata") or {}).get("event_payload") or {}, d) for d in dms]
    return [d for payload, d in payloads if payload.get("state") == "escalated"]


def run(dag) -> str:
    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False}
    return str(dag.test(run_conf=params).state)


def test_an_escalation_whose_ledger_write_was_lost_is_not_answered_by_the_next_run(
    dag, stack, post, monkeypatch
):
    from airflow.sdk import Variable

    from credit_bot import ledger, replies

    stack.use_settings(products=[fixed_result_rule()])
    request = post(f"credit please <{HOST}/looks/901|spend>")
    stack.sandbox.inject("looker", "GET /looks/{id}", "not_found")
    real_set = Variable.set

    def refuse_ledger(cls, key, value, *args, **kwargs):
        if key == ledger.LEDGER_VARIABLE:
            raise RuntimeError("the database refused the write")
        return real_set(key, value, *args, **kwargs)

    monkeypatch.setattr(Variable, "set", classmethod(refuse_ledger))
    assert run(dag) == "failed"
    assert len(escalations(stack)) == 1
    monkeypatch.undo()

    assert run(dag) == "success"  # Looker answers now: the request would be answerable
    assert thread_posts(stack, request) == []
    assert ledger_entry(request)["outcome"] == "escalated"
    assert "not found" in ledger_entry(request)["last_error"]
    assert len(escalations(stack)) == 1
    marker = ledger.post_marker(CHANNEL, request, replies.ESCALATION_EVENT_TYPE)
    assert Variable.get(marker, default=None) is None  # dropped once the ledger has the outcome
