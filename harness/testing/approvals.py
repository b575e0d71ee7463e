"""Shared by the approval tests on a real deployment (tests/deploy, tests/browser): a supervised
deployment (setting ``approval`` = "all") and the waits and looks at its approval runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from credit_bot.interactions import PARK_SETTLE_SECONDS
from harness.testing.live import DAG_ID, FAST, HOST, PRODUCTS, SCHEDULED_CHANNEL, Live, started

APPROVAL_DAG = "credit_bot_approval"
INTERACTIONS_DAG = "credit_bot_interactions"
OPERATOR, OPERATOR_DM = "U0OPERATOR", "D0OPERATOR"
ACME = f"Credit request acme\nFraud spend: <{HOST}/looks/101|$20,902.40>"
ACME_REPLY = "Approved, $10,226.35, exceptions"
BOLT = f"Credit memo for bolt: <{HOST}/explore/billing/counters_by_billable_item?qid=qBolt01|$2,389.84>"
BOLT_REPLY = "Approved, $1,283.00, exceptions"


@contextmanager
def supervised(workdir: Path, label: str, timings: dict[str, float] | None = None) -> Iterator[Live]:
    """A LocalExecutor deployment with a triggerer, every live reply waiting for approval, the three
    DAGs unpaused and Socket Mode connected (skips, saying why, without PostgreSQL)."""
    settings = {"channel": SCHEDULED_CHANNEL, "products": PRODUCTS, "approval": "all"}
    config = {**FAST, "CREDIT_BOT_APPROVAL_POKE_SECONDS": "5"}
    with started("LocalExecutor", workdir, settings, config, timings=timings, label=label) as live:
        api = live.deployment.api
        for dag_id in (APPROVAL_DAG, INTERACTIONS_DAG):
            live.deployment.wait_for_dag(dag_id)
            api.set_paused(dag_id, False)
        api.set_paused(DAG_ID, False)
        wait("Socket Mode connection", lambda: live.stack.sandbox.socket_status()["connections"] >= 1, live)
        yield live


def wait(what: str, check: Any, live: Live, timeout: float = 180.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail saying what did not come."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        live.deployment.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: nothing after {timeout:.0f}s")
        time.sleep(0.2)
    return found


def approval_dm(live: Live, ts: str, user: str = OPERATOR) -> dict[str, Any] | None:
    """The approval DM about request ``ts`` sent to ``user`` (its buttons name the approval run)."""
    for dm in live.stack.sandbox.dms(user=user):
        meta = (dm.get("metadata") or {}).get("event_payload") or {}
        if meta.get("kind") == "ask" and f"__{ts}__" in str(meta.get("run_id")):
            return dm
    return None


def run_of(dm: dict[str, Any]) -> str:
    """The approval run an approval DM is about."""
    return str(dm["metadata"]["event_payload"]["run_id"])


def hitl_path(run_id: str) -> str:
    return f"/dags/{APPROVAL_DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/decide/-1/hitlDetails"


def decide_state(live: Live, run_id: str) -> str | None:
    tis = live.deployment.api.task_instances(APPROVAL_DAG, run_id)
    return next((t["state"] for t in tis if t["task_id"] == "decide"), None)


def wait_awaiting(live: Live, run_id: str) -> None:
    wait(f"{run_id}: decide awaiting input", lambda: decide_state(live, run_id) == "awaiting_input", live)
    # Airflow 3.3: an answer within about a second of the task parking resumes it before the executor
    # reports the parking process's end, and that late report fails the task. A person is slower;
    # credit_bot.interactions waits the same (PARK_SETTLE_SECONDS) for a click that fast.
    time.sleep(PARK_SETTLE_SECONDS)


def updates(live: Live, dm_ts: str) -> list[dict[str, Any]]:
    """The operator's DM ``dm_ts`` as replaced in place (chat.update), oldest first."""
    return live.stack.sandbox.updates(channel=OPERATOR_DM, ts=dm_ts)


def replies(live: Live, ts: str) -> list[str]:
    """The bot's replies in the thread of request ``ts`` in the settings' channel."""
    return live.thread(SCHEDULED_CHANNEL, ts)
