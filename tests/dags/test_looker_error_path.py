"""A Looker error through a full DAG run: escalated to the operator, and nothing leaves the machine.

The sandbox answers a missing Look as real Looker does, with a documentation link that stock
looker_sdk follows to Looker's CDN (``tests/test_looker.py`` shows it does). The whole run sits
inside a socket-level guard that refuses and records any name lookup or connection off loopback,
so the test fails if any task — through the SDK or otherwise — reaches for another host.
"""

from __future__ import annotations

import pytest

from harness.local import DEMO_OPERATOR
from harness.testing.flows import HOST, ledger_entry, thread_posts
from harness.testing.network import loopback_only

pytestmark = pytest.mark.integration


def test_looker_404_with_real_documentation_url_is_escalated_with_no_outbound_call(dag, stack, post):
    request = post(f"credit please <{HOST}/looks/424242|$120.00>")
    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False}

    with loopback_only() as outbound:
        state = str(dag.test(run_conf=params).state)

    assert outbound.attempts == []
    assert state == "success"
    [call] = [c for c in stack.sandbox.calls(api="looker") if c["method"] == "GET /looks/{id}"]
    assert call["status"] == 404
    assert ledger_entry(request)["outcome"] == "escalated"
    assert thread_posts(stack, request) == []
    [dm] = stack.sandbox.dms(DEMO_OPERATOR)
    assert dm["metadata"]["event_payload"]["state"] == "escalated"
    assert "Look 424242 was not found in Looker (404)" in dm["text"]
