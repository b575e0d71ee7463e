"""Shared by the real-deployment and browser tests: the sandbox plus Airflow's components on PostgreSQL.

``started()`` brings up one deployment (``harness.deployment``) on the sandbox and skips, saying why,
when PostgreSQL, or Redis for Celery, is not reachable.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import PROJECT_ROOT
from harness.deployment import Deployment, airflow_deployment, postgres_unreachable, redis_unreachable
from harness.local import DEMO_CHANNEL, DEMO_SCENARIO, LocalStack, local_stack

DAG_ID = "credit_bot"
HOST = "https://credit-sandbox.cloud.looker.com"
# Scheduled runs read the settings channel; manual runs here name another one, so a scheduled run
# that happens to fire meanwhile never answers the messages they are about.
SCHEDULED_CHANNEL = DEMO_CHANNEL
MANUAL_CHANNEL = "C0PRODMEMOS"
SLOW_NOTEBOOK = PROJECT_ROOT / "tests" / "deploy" / "data" / "slow_result.ipynb"
SLOW_LOOK = 990
NOTEBOOK_SECONDS = 6
SLOW_CREDIT = "Approved, $42.50, exceptions"

# Wall-clock figures the tests measured, printed in the terminal summary.
TIMINGS: dict[str, float] = {}


def scenario() -> dict[str, Any]:
    """The demo scenario plus a Look whose SQL goes to the slow notebook."""
    data = copy.deepcopy(json.loads(DEMO_SCENARIO.read_text()))
    data["looker"]["queries"].append(
        {
            "id": SLOW_LOOK * 10,
            "slug": "qSlow990",
            "model": "billing",
            "view": "test",
            "sql": f"SELECT 1 -- Authy SLOW SLEEP={NOTEBOOK_SECONDS} RESULT=42.5 SPEND=100",
        }
    )
    data["looker"]["looks"].append({"id": SLOW_LOOK, "title": "slow look", "query_id": SLOW_LOOK * 10})
    return data


PRODUCTS = [
    {"name": "verify-slow", "pattern": "SLOW SLEEP=", "notebook": str(SLOW_NOTEBOOK)},
    {"name": "verify", "pattern": "authy", "notebook": "verify_credit.ipynb"},
]

# Airflow settings that only make the test quicker; everything else is as docker-compose.yaml has it.
FAST = {
    # The DAG's retry policy (read at parse time): production's 2 retries, a short delay.
    "CREDIT_BOT_TASK_RETRIES": "2",
    "CREDIT_BOT_RETRY_DELAY_SECONDS": "2",
    # A killed worker's task is declared lost after 12 s without a heartbeat (tasks heartbeat every
    # 2 s), not 5 minutes.
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "12",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
}


@dataclass
class Live:
    """The sandbox and the deployment the bot runs on, for one executor."""

    executor: str
    stack: LocalStack
    deployment: Deployment

    def post(self, channel: str, text: str) -> str:
        return self.stack.sandbox.add_message(channel, text, user="U0REQUESTER")

    def thread(self, channel: str, ts: str) -> list[str]:
        return [p["text"] for p in self.stack.sandbox.posts(channel) if p.get("thread_ts") == ts]

    def wait_for_reply(self, channel: str, ts: str, run_id: str | None = None, timeout: float = 240) -> float:
        """Poll the sandbox until the thread has a reply; the monotonic time it was seen.

        Fails early, with the task states, if ``run_id`` ends without replying.
        """
        api = self.deployment.api
        deadline = time.monotonic() + timeout
        while not self.thread(channel, ts):
            if run_id and api.dag_run(DAG_ID, run_id)["state"] in ("success", "failed"):
                if self.thread(channel, ts):
                    break
                pytest.fail(f"{run_id} ended without replying: {self.states(run_id)}")
            if time.monotonic() > deadline:
                pytest.fail(f"no reply to {ts} after {timeout:.0f}s: {run_id and self.states(run_id)}")
            self.deployment.check_alive()
            time.sleep(0.2)
        return time.monotonic()

    def states(self, run_id: str) -> dict[str, str]:
        tis = self.deployment.api.task_instances(DAG_ID, run_id)
        return {f"{t['task_id']}[{t['map_index']}]#{t['try_number']}": t["state"] for t in tis}


@contextmanager
def started(
    executor: str,
    workdir: Path,
    settings: dict[str, Any],
    config: dict[str, str],
    *,
    triggerer: bool = True,
    timings: dict[str, float] | None = None,
    label: str | None = None,
) -> Iterator[Live]:
    """The sandbox and a deployment with ``settings`` and Airflow ``config``, the DAG parsed; skips
    (with the reason) when PostgreSQL, or Redis for Celery, is not reachable."""
    if reason := postgres_unreachable():
        pytest.skip(reason)
    if executor == "CeleryExecutor" and (reason := redis_unreachable()):
        pytest.skip(reason)
    begun = time.monotonic()
    with (
        local_stack(workdir / "notebooks", scenario=scenario()) as stack,
        airflow_deployment(
            executor, env={**stack.environment(**settings), **config}, workdir=workdir, triggerer=triggerer
        ) as deployment,
    ):
        deployment.wait_for_dag(DAG_ID)
        (TIMINGS if timings is None else timings)[
            f"{label or executor}: start (create DB, migrate, start, DAG parsed)"
        ] = time.monotonic() - begun
        yield Live(executor=executor, stack=stack, deployment=deployment)
