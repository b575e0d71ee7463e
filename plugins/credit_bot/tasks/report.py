"""report_failures: the run's one leaf, red when a request's task failed or an operator DM reached nobody.

It runs after the ledger is written, so the failure alert fires (``alerts.on_dag_failure``) without
costing the run its record: a run is never green over a request that failed or an escalation
nobody received. It reads the run's task states (one of the five state channels, ``store``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from credit_bot.model import Recorded, RequestDict

log = logging.getLogger(__name__)

# The per-request tasks: one of them failed (after its Airflow retries) = the run fails.
REQUEST_TASKS = ("resolve", "run_notebook", "post_results")
# Those whose map index is the request's index in fetch_requests' list (run_notebook is mapped over
# the resolve outputs that exist, so its index is not).
_INDEXED_BY_REQUEST = ("resolve", "post_results")
_FAILED_STATES = frozenset({"failed", "upstream_failed"})


def failed_request_tasks(task_states: Mapping[str, object]) -> list[str]:
    """``["resolve[0]", "run_notebook[2]"]`` from a run's ``{task_id or task_id_mapindex: state}``."""
    failed = []
    for key, state in sorted(task_states.items()):
        if state not in _FAILED_STATES:
            continue
        for task_id in REQUEST_TASKS:
            if key == task_id:
                failed.append(task_id)
            elif key.startswith(task_id + "_") and key[len(task_id) + 1 :].isdigit():
                failed.append(f"{task_id}[{key[len(task_id) + 1 :]}]")
    return failed


def named(task: str, requests: list[RequestDict]) -> str:
    """``resolve[2]`` with the request it worked on (``resolve[2] (request 1764000000.000100)``)."""
    task_id, _, index = task.partition("[")
    number = int(index.rstrip("]")) if index.rstrip("]").isdigit() else -1
    if task_id in _INDEXED_BY_REQUEST and 0 <= number < len(requests):
        return f"{task} (request {requests[number]['ts']})"
    return task


def problems(failed: list[str], recorded: Recorded, requests: list[RequestDict]) -> list[str]:
    """What failed, in words: the request tasks, then each operator DM that could not be sent."""
    found = []
    if failed:
        tasks = ", ".join(named(task, requests) for task in failed)
        found.append(f"{len(failed)} request task(s) failed: {tasks} (see their logs)")
    for ts, why in sorted((recorded.get("undelivered") or {}).items()):
        found.append(f"request {ts}: an operator DM could not be sent: {why}")
    return found


def report_failures(dag_id: str, run_id: str, recorded: Recorded, requests: list[RequestDict]) -> None:
    """Fail the run (ledger already written) when a request's task failed or an operator DM failed.

    So the DAG's failure alert fires: a run is never green over a request that failed or an
    escalation nobody received. A task that failed and then succeeded on its retry counts as success.
    """
    from airflow.sdk.exceptions import AirflowFailException
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    states = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id]).get(run_id, {})
    found = problems(failed_request_tasks(states), recorded, requests)
    if found:
        raise AirflowFailException(
            "; ".join(found) + ". The ledger has this run's outcomes; failed requests are tried again at "
            "the next run (up to max_attempts) and then escalated."
        )
    log.info("every request task succeeded and every operator message was delivered")
