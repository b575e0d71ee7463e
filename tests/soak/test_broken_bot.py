"""The checker can fail: a bot broken on purpose, only inside this test, is caught by it.

The broken bot posts its reply without looking for an earlier one (no posting marker, no thread
read). A reply whose answer was lost on the way back (``lost_response``) is then posted again when
Airflow retries the task; the same faults through the real bot end in one reply each. Both go
through full ``dag.test()`` runs on the sandbox with the soak's Looks and notebook, and the
history through the soak's checker.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.local import LocalStack, load_dag, local_stack
from harness.soak import checker, generator, notebook
from harness.soak.run import Played, collect, soak_scenario, soak_settings

pytestmark = pytest.mark.integration

SEED = 20
REQUESTS = 3


@pytest.fixture
def soak_stack(tmp_path: Path) -> Iterator[tuple[LocalStack, generator.Plan, Path]]:
    from airflow.models.variable import Variable

    from credit_bot.ledger import LEDGER_VARIABLE

    rng = random.Random(SEED)
    table = generator.looks(rng)
    looks = list(generator.VERIFY_LOOKS)[:REQUESTS]
    requests = [
        generator.Request(
            f"r{i}",
            "verify",
            0.0,
            f"Credit request {i}: <https://{generator.HOST}/looks/{look}|Look>",
            outcomes=("answered",),
            amount=generator.expected_amount(table, [look]),
        )
        for i, look in enumerate(looks)
    ]
    plan = generator.Plan(seed=SEED, seconds=0, looks=table, requests=requests)
    nb = notebook.write(tmp_path / "soak_result.ipynb", tmp_path / "faults")
    Variable.delete(LEDGER_VARIABLE)
    with local_stack(tmp_path / "notebooks", scenario=soak_scenario(plan)) as stack:
        stack.use_settings(**soak_settings(nb))
        yield stack, plan, nb
    Variable.delete(LEDGER_VARIABLE)


def _blind_reply(
    self: Any, request: dict[str, Any], text: str, event_type: str, payload: dict[str, Any]
) -> str:
    """SlackSide.reply broken on purpose: posts at once, never asks whether it already did."""
    from credit_bot import slack

    return slack.post(
        self.poster,
        channel=request["channel"],
        thread_ts=request["ts"],
        text=text,
        event_type=event_type,
        payload=payload,
    )


def _history(stack: LocalStack, plan: generator.Plan, played: Played) -> dict[str, Any]:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    from credit_bot.ledger import LEDGER_VARIABLE

    with create_session() as session:
        markers = [k for (k,) in session.query(Variable.key) if k.startswith(checker.MARKER_PREFIX)]
    settings = stack.settings()
    return collect(
        plan,
        played,
        stack.sandbox,
        settings["channel"],
        list(settings["operators"]),
        Variable.get(LEDGER_VARIABLE, default_var=None),
        markers,
        [{"kind": "slack post lost response", "at": 0.0, "applied": True}] * REQUESTS,
        {},
    )


def _play(stack: LocalStack, plan: generator.Plan) -> dict[str, Any]:
    played = Played()
    for request in plan.requests:
        played.ts[request.key] = stack.sandbox.add_message(stack.settings()["channel"], request.text)
    # Each reply is stored by Slack, and its answer lost on the way back.
    stack.sandbox.inject("slack", "chat.postMessage", "lost_response", times=REQUESTS)
    dag = load_dag()
    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False}
    for _ in range(3):
        dag.test(run_conf=params)
    return _history(stack, plan, played)


def test_a_bot_that_posts_without_looking_is_caught(soak_stack, monkeypatch) -> None:
    from credit_bot.tasks.slack_side import SlackSide

    stack, plan, _ = soak_stack
    monkeypatch.setattr(SlackSide, "reply", _blind_reply)
    report = checker.check(_play(stack, plan))
    rules = {v.rule for v in report.violations}
    assert "at most one reply" in rules, report.violations
    assert report.replies > len(plan.requests)


def test_the_real_bot_under_the_same_faults_passes(soak_stack) -> None:
    stack, plan, _ = soak_stack
    report = checker.check(_play(stack, plan))
    assert report.violations == []
    assert report.outcomes == {"answered": REQUESTS}
    assert report.replies == REQUESTS
