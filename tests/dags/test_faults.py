"""The fault matrix: one fault per endpoint (or notebook, or ledger write), full DAG runs until settled.

Every case posts one Verify request, injects the fault into the sandbox (or the notebook, or
the ledger write), and runs the DAG as the schedule would, at most ``max_attempts`` + 1 times.
Whatever the fault, the request must end answered exactly once in its thread, or escalated
exactly once to the operator by DM — never both, never twice, never lost.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from harness.local import DEMO_OPERATOR
from harness.testing.flows import HOST, fixed_result_rule, ledger_entry, thread_posts

pytestmark = pytest.mark.integration

MAX_ATTEMPTS = 2
TIMEOUT = 2  # seconds, both clients: the "slow" faults answer after TIMEOUT + 2
ANSWER = "Approved, $4,948.80, exceptions"  # look 901's fixed result


@dataclass(frozen=True)
class Case:
    api: str  # "slack", "looker", "notebook" or "ledger"
    method: str
    kind: str
    expected: str  # final ledger outcome: "answered" or "escalated"
    times: int = 1
    look: int = 901
    opts: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.api}-{self.method}-{self.kind}x{self.times}".replace(" ", "_").replace("/", "")


SLOW = {"seconds": TIMEOUT + 2}
CASES = [
    # Slack: reading the channel
    Case("slack", "conversations.history", "ratelimited", "answered", opts={"retry_after": 1}),
    Case("slack", "conversations.history", "server_error", "answered", opts={"status": 503}),
    Case("slack", "conversations.history", "reset", "answered"),
    Case("slack", "conversations.history", "delay", "answered", opts=SLOW),
    # Slack: the thread check before posting, and posting
    Case("slack", "conversations.replies", "server_error", "answered", times=3),
    Case("slack", "conversations.replies", "delay", "answered", opts=SLOW),
    Case("slack", "auth.test", "slack_error", "answered", opts={"error": "internal_error"}),
    Case("slack", "chat.postMessage", "ratelimited", "answered", opts={"retry_after": 1}),
    Case("slack", "chat.postMessage", "server_error", "answered"),
    Case("slack", "chat.postMessage", "reset", "answered"),
    Case("slack", "chat.postMessage", "lost_response", "answered"),  # posted, answer lost
    # Slack: the operator DM (look 902 is a negative amount: escalated)
    Case("slack", "conversations.open", "server_error", "escalated", times=3, look=902),
    Case("slack", "chat.postMessage", "lost_response", "escalated", look=902),
    # Looker
    Case("looker", "GET /looks/{id}", "unauthorized", "answered"),  # token expired: log in again
    Case("looker", "GET /looks/{id}", "not_found", "escalated"),
    Case("looker", "GET /queries/{id}/run/{format}", "server_error", "answered", times=4),
    Case("looker", "GET /queries/{id}/run/{format}", "server_error", "escalated", times=1000),
    Case("looker", "GET /looks/{id}", "reset", "answered", times=3),
    Case("looker", "GET /looks/{id}", "delay", "answered", opts=SLOW),
    # The notebook
    Case("notebook", "run", "exception", "escalated", look=905),
    Case("notebook", "run", "kernel_death", "escalated", look=908),
    Case("notebook", "run", "timeout", "escalated", look=909),
    # The ledger write
    Case("ledger", "Variable.set", "fails", "answered"),
]


def _short_timeouts() -> None:
    for name in ("AIRFLOW_CONN_SLACK_API_DEFAULT", "AIRFLOW_CONN_LOOKER_DEFAULT"):
        conn = json.loads(os.environ[name])
        conn["extra"]["timeout"] = TIMEOUT
        os.environ[name] = json.dumps(conn)


def _run(dag) -> str:
    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False}
    return str(dag.test(run_conf=params).state)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_each_fault_ends_answered_once_or_escalated_once(dag, stack, post, monkeypatch, case):
    from airflow.sdk import Variable

    from credit_bot.ledger import LEDGER_VARIABLE

    stack.use_settings(products=[fixed_result_rule()], max_attempts=MAX_ATTEMPTS, notebook_timeout_seconds=5)
    _short_timeouts()
    request = post(f"credit please <{HOST}/looks/{case.look}|spend>")
    if case.api in ("slack", "looker"):
        stack.sandbox.inject(case.api, case.method, case.kind, times=case.times, **case.opts)
    elif case.api == "ledger":
        real_set = Variable.set.__func__
        failures = [RuntimeError("metadata DB unavailable (injected)")]

        def failing_set(cls, key, value, *args, **kwargs):
            if key == LEDGER_VARIABLE and failures:
                raise failures.pop()
            return real_set(cls, key, value, *args, **kwargs)

        monkeypatch.setattr(Variable, "set", classmethod(failing_set))

    runs = []
    for _ in range(MAX_ATTEMPTS + 1):
        runs.append(_run(dag))
        book = Variable.get(LEDGER_VARIABLE, default=None)
        if book and ledger_entry(request).get("outcome") in ("answered", "escalated"):
            break

    entry = ledger_entry(request)
    posts = thread_posts(stack, request)
    # The request's own DMs carry its metadata. A run red for a failed request task sends no alert
    # on top: every fault here is retried away or told by the request's DM (one alert per problem).
    dms = [d for d in stack.sandbox.dms(DEMO_OPERATOR) if d["metadata"]]
    assert [d["text"] for d in stack.sandbox.dms(DEMO_OPERATOR) if not d["metadata"]] == [], runs
    assert entry["outcome"] == case.expected, (runs, entry)
    states = [d["metadata"]["event_payload"]["state"] for d in dms]
    if case.expected == "answered":
        assert posts == [ANSWER]
        assert states in ([], ["retrying"])  # told once if a later run had to finish it
        assert entry["amount"] == "4948.80"
    else:
        assert posts == []
        assert states[-1:] == ["escalated"], [d["text"] for d in dms]
        assert states in (["escalated"], ["retrying", "escalated"])
        assert "slack.com/archives" in dms[-1]["text"]
    assert entry["attempts"] <= MAX_ATTEMPTS + 1
    # Nothing pending: a further run reads the channel once and does nothing else.
    stack.sandbox.reset_calls()
    assert _run(dag) == "success"
    assert [c["method"] for c in stack.sandbox.calls(api="slack")] == ["auth.test", "conversations.history"]
    assert stack.sandbox.calls(api="looker") == []
