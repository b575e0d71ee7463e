"""CreditBot on a real Airflow deployment: PostgreSQL, the real components as processes, LocalExecutor
and CeleryExecutor on Redis, driven through the REST API, answering in the sandbox.

Per executor: the schedule fires a run by itself; a run triggered through the REST API for one
``message_ts`` answers it; a worker killed in the middle of a notebook is recovered by Airflow's
retry, with exactly one reply.
"""

from __future__ import annotations

import time
from datetime import datetime

import psutil
import pytest

from harness.deployment import kill_process_tree, process_alive
from harness.testing.live import (
    DAG_ID,
    HOST,
    MANUAL_CHANNEL,
    SCHEDULED_CHANNEL,
    SLOW_CREDIT,
    SLOW_LOOK,
    TIMINGS,
    Live,
)

pytestmark = [pytest.mark.deploy, pytest.mark.integration]

ACME = f"Credit request acme\nFraud spend: <{HOST}/looks/101|$20,902.40>"
ACME_REPLY = "Approved, $10,226.35, exceptions"
BOLT = f"Credit memo for bolt: <{HOST}/explore/billing/counters_by_billable_item?qid=qBolt01|$2,389.84>"
BOLT_REPLY = "Approved, $1,283.00, exceptions"


def test_schedule_fires_a_run_by_itself(live: Live) -> None:
    api = live.deployment.api
    assert api.dag(DAG_ID)["is_paused"], "DAGs must start paused, as in production"
    ts = live.post(SCHEDULED_CHANNEL, ACME)

    unpaused = time.monotonic()
    api.set_paused(DAG_ID, False)
    # catchup=False: unpausing makes the scheduler create the run of the latest */10 tick at once.
    deadline = time.monotonic() + 60
    while not (runs := api.dag_runs(DAG_ID, run_type="scheduled")):
        assert time.monotonic() < deadline, "the scheduler created no scheduled run within 60 s"
        time.sleep(0.5)
    run = runs[0]
    assert run["run_type"] == "scheduled"
    assert run["conf"] == {}
    assert datetime.fromisoformat(run["run_after"]).minute % 10 == 0  # a tick of */10 * * * *

    replied = live.wait_for_reply(SCHEDULED_CHANNEL, ts, run["dag_run_id"])
    assert api.wait_for_run(DAG_ID, run["dag_run_id"], timeout=120)["state"] == "success"
    TIMINGS[f"{live.executor}: unpause -> scheduled run's reply"] = replied - unpaused
    assert live.thread(SCHEDULED_CHANNEL, ts) == [ACME_REPLY]
    assert live.stack.sandbox.dms() == []


def test_run_triggered_through_the_rest_api_answers_its_message(live: Live) -> None:
    api = live.deployment.api
    api.set_paused(DAG_ID, False)
    other = live.post(MANUAL_CHANNEL, ACME)
    ts = live.post(MANUAL_CHANNEL, BOLT)

    triggered = time.monotonic()
    run = api.trigger(DAG_ID, conf={"channel": MANUAL_CHANNEL, "message_ts": ts, "dry_run": False})
    replied = live.wait_for_reply(MANUAL_CHANNEL, ts, run["dag_run_id"])
    TIMINGS[f"{live.executor}: trigger -> reply"] = replied - triggered

    finished = api.wait_for_run(DAG_ID, run["dag_run_id"], timeout=120)
    assert finished["state"] == "success", live.states(run["dag_run_id"])
    assert finished["run_type"] == "manual"
    assert finished["note"] == "1 request: 1 answered ($1,283.00 total)"
    assert live.thread(MANUAL_CHANNEL, ts) == [BOLT_REPLY]
    assert live.thread(MANUAL_CHANNEL, other) == []  # only the message named by message_ts
    [notebook] = [t for t in api.task_instances(DAG_ID, run["dag_run_id"]) if t["task_id"] == "run_notebook"]
    log = api.task_log(
        DAG_ID, run["dag_run_id"], "run_notebook", notebook["try_number"], notebook["map_index"]
    )
    assert "credit_amount read from" in log
    assert live.stack.sandbox.dms() == []


def test_worker_killed_mid_notebook_is_retried_to_exactly_one_reply(live: Live) -> None:
    deployment, api = live.deployment, live.deployment.api
    api.set_paused(DAG_ID, False)
    ts = live.post(MANUAL_CHANNEL, f"Slow one: <{HOST}/looks/{SLOW_LOOK}|$100>")
    run_id = api.trigger(DAG_ID, conf={"channel": MANUAL_CHANNEL, "message_ts": ts, "dry_run": False})[
        "dag_run_id"
    ]

    task, kernel = _notebook_running(live, run_id)
    if live.executor == "LocalExecutor":
        # The scheduler's executor worker that supervises the task (forked by the scheduler's
        # forkserver): it dies with the task and its kernel.
        worker = psutil.Process(task["pid"]).parent()
        assert deployment.component("scheduler").pid in {p.pid for p in worker.parents()}
        kill_process_tree(worker.pid)
    else:
        assert deployment.component_running(task["pid"]) == "celery-worker"
        deployment.kill("celery-worker")
    killed = time.monotonic()
    assert not process_alive(kernel), "the notebook's kernel outlived its worker"
    if live.executor == "CeleryExecutor":
        deployment.start("celery-worker")  # what `restart: always` does in docker-compose

    replied = live.wait_for_reply(MANUAL_CHANNEL, ts, run_id)
    TIMINGS[f"{live.executor}: worker killed -> reply after retry"] = replied - killed
    assert api.wait_for_run(DAG_ID, run_id, timeout=120)["state"] == "success", live.states(run_id)

    assert live.thread(MANUAL_CHANNEL, ts) == [SLOW_CREDIT]
    replies = [
        c for c in live.stack.sandbox.calls(api="slack", method="chat.postMessage") if _in_thread(c, ts)
    ]
    assert len(replies) == 1
    tries = api.task_tries(DAG_ID, run_id, "run_notebook", map_index=0)
    assert [t["state"] for t in tries] == ["failed", "success"], tries
    assert live.stack.sandbox.dms() == []


def _notebook_running(live: Live, run_id: str, timeout: float = 120) -> tuple[dict, psutil.Process]:
    """The first try of run_notebook once its kernel is executing the notebook, and that kernel."""
    api = live.deployment.api
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live.deployment.check_alive()
        task = api.task_instances(DAG_ID, run_id)
        [notebook] = [t for t in task if t["task_id"] == "run_notebook"] or [None]
        if notebook and notebook["state"] == "running" and notebook["pid"]:
            assert notebook["try_number"] == 1
            kernels = [
                p
                for p in psutil.Process(notebook["pid"]).children(recursive=True)
                if "ipykernel" in " ".join(p.cmdline())
            ]
            if kernels:
                time.sleep(1)  # the kernel is up; let it get into the notebook's sleep
                return notebook, kernels[0]
        time.sleep(0.2)
    pytest.fail(f"run_notebook did not start a kernel within {timeout:.0f}s: {live.states(run_id)}")


def _in_thread(call: dict, ts: str) -> bool:
    return call["params"].get("thread_ts") == ts


def test_overlapping_runs_never_process_a_message_twice(live: Live) -> None:
    """A channel run and a manual trigger for the same message, started together: one reply."""
    api = live.deployment.api
    api.set_paused(DAG_ID, False)
    ts = live.post(MANUAL_CHANNEL, BOLT)

    channel_run = api.trigger(DAG_ID, conf={"channel": MANUAL_CHANNEL, "dry_run": False})["dag_run_id"]
    manual_run = api.trigger(DAG_ID, conf={"channel": MANUAL_CHANNEL, "message_ts": ts, "dry_run": False})[
        "dag_run_id"
    ]
    for run_id in (channel_run, manual_run):
        assert api.wait_for_run(DAG_ID, run_id, timeout=240)["state"] == "success", live.states(run_id)

    assert live.thread(MANUAL_CHANNEL, ts) == [BOLT_REPLY]
    posts = [c for c in live.stack.sandbox.calls(api="slack", method="chat.postMessage") if _in_thread(c, ts)]
    assert len(posts) == 1
    # max_active_runs=1: the second run waited for the first instead of racing it.
    first, second = sorted(
        (api.dag_run(DAG_ID, r) for r in (channel_run, manual_run)), key=lambda r: r["start_date"]
    )
    assert second["start_date"] >= first["end_date"]


def test_task_log_files_hold_no_secret(live: Live) -> None:
    """The real task logs (files the task runner wrote) of every run so far: no token, secret, password."""
    sandbox = live.stack.sandbox
    secrets = [
        sandbox.slack_token,
        sandbox.slack_app_token,
        sandbox.looker_client_id,
        sandbox.looker_client_secret,
    ]
    logs = list((live.deployment.home / "logs").rglob("*.log"))
    assert logs, "no task log files were written"
    leaked = [str(p) for p in logs for s in secrets if s in p.read_text(errors="replace")]
    assert leaked == []
