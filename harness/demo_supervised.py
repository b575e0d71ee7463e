"""The demo's last step: the supervised path (setting ``approval`` = "all") on a running Airflow.

A reply that needs approval waits for a person's click, and a click needs more than ``dag.test()``:
the triggerer holds Slack's Socket Mode connection and hands the click on, the scheduler runs the
approval DAG, the API server takes the answer to its human-in-the-loop task. So this step starts
Airflow's components on this machine (``harness.deployment``: LocalExecutor, SQLite metadata DB in
``output/supervised/``, no database server needed), posts two sample requests, waits for their
approval DMs, clicks **Approve** on one and **Reject** on the other through the sandbox (Slack's
``block_actions`` envelope over Socket Mode, as a person's click arrives) and shows what followed.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from credit_bot.interactions import PARK_SETTLE_SECONDS
from harness.deployment import AirflowApiError, Deployment, airflow_deployment
from harness.local import DEMO_CHANNEL, DEMO_OPERATOR, LocalStack, local_stack

APPROVAL_DAG = "credit_bot_approval"
DAGS = ("credit_bot", APPROVAL_DAG, "credit_bot_interactions")
APPROVE, REJECT = "credit_bot_approve", "credit_bot_reject"
# Airflow settings that only make the demo quicker: the approval run looks for its answer every 5 s;
# the DAGs start unpaused, so the first parse already registers the Socket Mode watcher (a DAG
# unpaused later gets it at its next parse, up to 30 s on).
QUICK = {
    "CREDIT_BOT_APPROVAL_POKE_SECONDS": "5",
    "CREDIT_BOT_RETRY_DELAY_SECONDS": "2",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
}
T = TypeVar("T")


class StepFailed(RuntimeError):
    """Something the step waited for did not happen; the message says what."""


def show(
    say: Callable[[str], None],
    requests: list[dict[str, Any]],
    output: Path,
    *,
    warehouse_protocol: str = "duckdb",
    products: list[dict[str, str]] | None = None,
) -> bool:
    """Run the step for the first two of ``requests`` (each ``text`` and ``expect``); whether all went
    as expected: the approved reply posted once, after the click, and nothing for the rejected one."""
    workdir = output / "supervised"
    shutil.rmtree(workdir, ignore_errors=True)  # the last demo's database and logs
    say('[6/6] supervised (setting approval = "all"): every reply waits for a person\'s Approve')
    started = time.monotonic()
    overrides: dict[str, Any] = {"approval": "all", **({"products": products} if products else {})}
    with local_stack(workdir / "notebooks", warehouse_protocol=warehouse_protocol) as stack:
        env = {**stack.environment(**overrides), **QUICK}
        with airflow_deployment("LocalExecutor", env=env, workdir=workdir, sqlite=True) as deployment:
            try:
                _ready(deployment, stack)
                say(
                    "      Airflow's scheduler, triggerer, dag-processor and API server are up "
                    f"(LocalExecutor, SQLite; {time.monotonic() - started:.0f} s)"
                )
                return _approve_one_reject_one(say, deployment, stack, requests[:2])
            except StepFailed as exc:
                say(f"      the supervised step failed: {exc}")
                return False
            finally:
                say(f"      Airflow's logs of this step: {workdir / 'logs'}")


def _ready(deployment: Deployment, stack: LocalStack) -> None:
    for dag_id in DAGS:  # unpaused at creation (QUICK): nothing to PATCH while SQLite is busiest
        if deployment.wait_for_dag(dag_id).get("is_paused"):
            raise StepFailed(f"{dag_id} is paused")
    _wait(
        "the triggerer's Socket Mode connection to the sandbox",
        lambda: stack.sandbox.socket_status()["connections"] >= 1,
        deployment,
    )


def _approve_one_reject_one(
    say: Callable[[str], None], deployment: Deployment, stack: LocalStack, requests: list[dict[str, Any]]
) -> bool:
    sandbox = stack.sandbox
    clicks = (APPROVE, REJECT)
    posted: list[tuple[str, dict[str, Any]]] = []
    dms: list[dict[str, Any]] = []
    for request in requests:  # the second is posted while the first waits for its click
        ts = sandbox.add_message(DEMO_CHANNEL, request["text"], user="U0REQUESTER")
        at = time.monotonic()
        dms.append(_wait(f"the approval DM for {ts}", lambda ts=ts: _approval_dm(stack, ts), deployment))
        posted.append((ts, request))
        say(
            f"      request {len(posted)} posted{' while request 1 waits' if len(posted) > 1 else ''}; "
            f"{time.monotonic() - at:.1f} s later its approval DM reached <@{DEMO_OPERATOR}>"
        )
    ok = not any(_thread(stack, ts) for ts, _ in posted)
    say(f"      threads so far: {'empty' if ok else 'NOT empty'} (each reply waits for a click in its DM)")
    for (ts, request), dm, action in zip(posted, dms, clicks, strict=True):
        run_id = str(dm["metadata"]["event_payload"]["run_id"])
        _wait("the approval task waiting for input", lambda r=run_id: _awaiting(deployment, r), deployment)
        time.sleep(PARK_SETTLE_SECONDS)  # Airflow 3.3: an answer within a second of parking fails the task
        label = request["text"].splitlines()[0][:40]
        proposed = _proposed(dm["text"])
        click = sandbox.click(DEMO_OPERATOR, dm["channel"], dm["ts"], action, wait=True)
        clicked = time.monotonic()
        verb = "Approve" if action == APPROVE else "Reject"
        say(f"      {label}: proposed {proposed!r}")
        say(
            f"        the demo clicks {verb} as <@{DEMO_OPERATOR}> in the DM (Socket Mode, "
            f"{click['status']} in {click.get('ack_seconds') or 0:.3f} s)"
        )
        if action == APPROVE:
            _wait("the approved reply in the thread", lambda ts=ts: _thread(stack, ts), deployment)
            thread = _thread(stack, ts)
            say(f"        → posted in the thread {time.monotonic() - clicked:.1f} s later: {thread!r}")
            ok = ok and thread == [request["expect"]]
        _wait("the approval run's end", lambda r=run_id: _finished(deployment, r), deployment)
        update = _wait(
            "the DM updated in place",
            lambda dm=dm: sandbox.updates(channel=dm["channel"], ts=dm["ts"]),
            deployment,
        )
        decided = update[-1]["text"].splitlines()[-1]
        if action == REJECT:
            thread = _thread(stack, ts)
            say(f"        → nothing posted in the thread ({len(thread)} replies)")
            ok = ok and not thread
        say(f"        → the DM now says: {decided}")
    say(
        "      (each wait was also a task in Airflow's Required actions, answerable there or by the REST API)"
    )
    return ok


def _approval_dm(stack: LocalStack, ts: str) -> dict[str, Any] | None:
    for dm in stack.sandbox.dms(user=DEMO_OPERATOR):
        meta = (dm.get("metadata") or {}).get("event_payload") or {}
        if meta.get("kind") == "ask" and f"__{ts}__" in str(meta.get("run_id")):
            return dm
    return None


def _awaiting(deployment: Deployment, run_id: str) -> bool:
    tis = deployment.api.task_instances(APPROVAL_DAG, run_id)
    return any(t["task_id"] == "decide" and t["state"] == "awaiting_input" for t in tis)


def _finished(deployment: Deployment, run_id: str) -> bool:
    return deployment.api.dag_run(APPROVAL_DAG, run_id)["state"] in ("success", "failed")


def _thread(stack: LocalStack, ts: str) -> list[str]:
    return [p["text"] for p in stack.sandbox.posts(DEMO_CHANNEL) if p.get("thread_ts") == ts]


def _proposed(text: str) -> str:
    line = next((x for x in text.splitlines() if "Proposed reply: " in x), "")
    return line.split("Proposed reply: ", 1)[-1]


def _wait(what: str, check: Callable[[], T | None], deployment: Deployment, timeout: float = 240.0) -> T:
    """Poll ``check`` until it finds something; an API error (SQLite busy: 500) is polled through."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(AirflowApiError):
            if found := check():
                return found
        deployment.check_alive()
        if time.monotonic() > deadline:
            raise StepFailed(f"no sign of {what} after {timeout:.0f} s")
        time.sleep(0.3)
