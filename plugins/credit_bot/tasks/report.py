"""report_failures: the run's leaf that is red when a request's task failed or a DM reached nobody.

It runs after the ledger is written, so a failure alert fires (``alerts.on_task_failure``, for what
no request DM told) without costing the run its record: a run is never green over a request that
failed or an escalation nobody received. It reads the run's task states (one of the five state
channels, ``store``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from credit_bot.errors import AlreadyTold
from credit_bot.model import Outcome, Recorded, RequestDict, RequestOutcome

log = logging.getLogger(__name__)

# The per-request tasks: one of them failed (after its Airflow retries) = the run fails.
REQUEST_TASKS = ("resolve", "run_notebook", "post_results")
# Those whose map index is the request's index in fetch_requests' list (run_notebook is mapped over
# the resolve outputs that exist, so its index is not).
_INDEXED_BY_REQUEST = ("resolve", "post_results")
_FAILED_STATES = frozenset({"failed", "upstream_failed"})


def failed_request_tasks(task_states: Mapping[str, object]) -> list[str]:
    """``["resolve[0]", "run_notebook[2]"]`` from a run's ``{task_id or task_id_mapindex: state}``."""
    return [_label(task_id, index) for task_id, index in failed_tasks(task_states)]


def failed_tasks(task_states: Mapping[str, object]) -> list[tuple[str, int | None]]:
    """``[("resolve", 0), ("run_notebook", 2)]``: the failed request tasks and their map index."""
    failed: list[tuple[str, int | None]] = []
    for key, state in sorted(task_states.items()):
        if state not in _FAILED_STATES:
            continue
        for task_id in REQUEST_TASKS:
            if key == task_id:
                failed.append((task_id, None))
            elif key.startswith(task_id + "_") and key[len(task_id) + 1 :].isdigit():
                failed.append((task_id, int(key[len(task_id) + 1 :])))
    return failed


def _label(task_id: str, index: int | None) -> str:
    return task_id if index is None else f"{task_id}[{index}]"


def untold_failures(failed: list[tuple[str, int | None]], outcomes: Sequence[RequestOutcome]) -> list[str]:
    """The failed request tasks no request DM told the operators about.

    A request's ``resolve`` or ``run_notebook`` failing is told when its ``post_results`` (same map
    index) finished with the request retrying or escalated and its DM delivered: that DM names the
    error. A failed ``post_results`` told nobody (it is the task that tells), nor did one whose
    request was answered or ignored despite a failed task.
    """
    told = {
        o["map_index"]
        for o in outcomes
        if "map_index" in o
        and o.get("outcome") in (Outcome.RETRYING, Outcome.ESCALATED)
        and not o.get("undelivered")
    }
    return [
        _label(task_id, index)
        for task_id, index in failed
        if task_id == "post_results" or index is None or index not in told
    ]


def named(task: str, requests: list[RequestDict]) -> str:
    """``resolve[2]`` with the request it worked on (``resolve[2] (request 1764000000.000100)``)."""
    task_id, _, index = task.partition("[")
    number = int(index.rstrip("]")) if index.rstrip("]").isdigit() else -1
    if task_id in _INDEXED_BY_REQUEST and 0 <= number < len(requests):
        return f"{task} (request {requests[number]['ts']})"
    return task


def problems(failed: list[str], recorded: Recorded, requests: list[RequestDict]) -> list[str]:
    """What failed, in words: each operator DM that could not be sent, then the request tasks."""
    found = [
        f"request {ts}: an operator DM could not be sent: {why}"
        for ts, why in sorted((recorded.get("undelivered") or {}).items())
    ]
    if failed:
        tasks = ", ".join(named(task, requests) for task in failed)
        found.append(f"{len(failed)} request task(s) failed: {tasks} (see their logs)")
    return found


_AFTER = (
    "The ledger has this run's outcomes; failed requests are tried again at the next run (up to "
    "max_attempts) and then escalated."
)


def report_failures(
    dag_id: str,
    run_id: str,
    recorded: Recorded,
    requests: list[RequestDict],
    outcomes: Sequence[RequestOutcome | None] | None = None,
) -> None:
    """Fail the run (ledger already written) when a request's task failed or an operator DM failed.

    A run is never green over a request that failed or an escalation nobody received. Its failure
    alert (``alerts.on_task_failure``, this task's callback) quotes only what no request DM told:
    a DM that could not be delivered, a request task whose request the operators did not hear of.
    When the requests' DMs told it all, the run still fails, from :class:`~credit_bot.errors.AlreadyTold`,
    and nobody is alerted twice. ``outcomes`` are ``post_results``' return values (with ``map_index``).
    A task that failed and then succeeded on its retry counts as success.
    """
    from airflow.sdk.exceptions import AirflowFailException
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    states = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id]).get(run_id, {})
    failed = failed_tasks(states)
    untold = untold_failures(failed, [o for o in outcomes or [] if o])
    found = problems(untold, recorded, requests)
    told = [task for task in failed_request_tasks(states) if task not in untold]
    if told:
        log.info("failed, and told to the operators by its request's DM: %s", ", ".join(told))
    if found:
        raise AirflowFailException("; ".join(found) + ". " + _AFTER)
    if told:
        tasks = ", ".join(named(task, requests) for task in told)
        message = (
            f"{len(told)} request task(s) failed: {tasks}; the operators were told by each request's "
            f"DM, so no run alert. {_AFTER}"
        )
        raise AirflowFailException(message) from AlreadyTold(message)
    log.info("every request task succeeded and every operator message was delivered")
