"""How one DAG run is started: dag.test() in this process, or a real LocalExecutor deployment."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from bench.environment import BenchError, epoch, progress
from bench.scenarios import IDLE_CHANNEL


# runners: how one DAG run is started ───────────────────────────────────────────────────────
@dataclass
class RunOutcome:
    state: str
    run_id: str
    task_instances: list[dict[str, Any]]


class Runner(Protocol):
    """Starts one ``credit_bot`` run on a channel and waits for it; reads its metadata and the ledger."""

    name: str

    def run(self, channel: str) -> RunOutcome: ...

    def ledger_text(self) -> str | None: ...

    def reset_ledger(self) -> None: ...


def run_conf(channel: str) -> dict[str, Any]:
    # Every param explicitly: dag.test() keeps the previous run's conf in the DAG's params. The
    # channel goes in as the run's param, so a deployment started once serves every case.
    return {"channel": channel, "message_ts": None, "dry_run": None, "force": False}


class DagTestRunner:
    """``dag.test()`` in this process: tasks run one after another, metadata in the private SQLite DB."""

    name = "dag.test"

    def __init__(self) -> None:
        from harness.local import load_dag

        self.dag = load_dag()

    def run(self, channel: str) -> RunOutcome:
        dagrun = self.dag.test(run_conf=run_conf(channel))
        return RunOutcome(
            state=str(dagrun.state),
            run_id=dagrun.run_id,
            task_instances=metadata_task_instances(self.dag.dag_id, dagrun.run_id),
        )

    def ledger_text(self) -> str | None:
        from airflow.models.variable import Variable

        from credit_bot.ledger import LEDGER_VARIABLE

        return Variable.get(LEDGER_VARIABLE, default_var=None)

    def reset_ledger(self) -> None:
        from airflow.models.variable import Variable

        from credit_bot.ledger import LEDGER_VARIABLE

        Variable.delete(LEDGER_VARIABLE)


def metadata_task_instances(dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """The run's TaskInstance rows from the metadata DB, as plain dicts."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        ).all()
        return [
            {
                "task_id": ti.task_id,
                "map_index": ti.map_index,
                "state": str(ti.state) if ti.state else None,
                "try_number": ti.try_number,
                "duration_s": ti.duration,
                "start": ti.start_date.timestamp() if ti.start_date else None,
                "end": ti.end_date.timestamp() if ti.end_date else None,
            }
            for ti in rows
        ]


@contextmanager
def dag_test_runner(stack: Any, parallelism: int, events: bool = False) -> Iterator[Runner]:
    yield DagTestRunner()  # no triggerer here: the latency with events needs --executor local


class DeploymentRunner:
    """Runs triggered through the REST API of a real deployment (``harness.deployment``)."""

    def __init__(self, deployment: Any, name: str) -> None:
        self.deployment = deployment
        self.api = deployment.api
        self.name = name

    def run(self, channel: str) -> RunOutcome:
        triggered = self.api.trigger("credit_bot", conf=run_conf(channel))
        run_id = triggered["dag_run_id"]
        finished = self.api.wait_for_run("credit_bot", run_id, timeout=1800)
        return RunOutcome(state=finished["state"], run_id=run_id, task_instances=self._task_instances(run_id))

    def _task_instances(self, run_id: str) -> list[dict[str, Any]]:
        from urllib.parse import quote

        path = f"/dags/credit_bot/dagRuns/{quote(run_id, safe='')}/taskInstances"
        rows: list[dict[str, Any]] = []
        while True:  # the API pages at 100; a backlog of 50 has ~155 task instances
            page = self.api.request("GET", path, params={"limit": 100, "offset": len(rows)})
            rows.extend(page["task_instances"])
            if not page["task_instances"] or len(rows) >= page["total_entries"]:
                break
        return [
            {
                "task_id": ti["task_id"],
                "map_index": ti["map_index"],
                "state": ti["state"],
                "try_number": ti["try_number"],
                "duration_s": ti.get("duration"),
                "start": epoch(ti.get("start_date")),
                "end": epoch(ti.get("end_date")),
            }
            for ti in rows
        ]

    def ledger_text(self) -> str | None:
        from credit_bot.ledger import LEDGER_VARIABLE
        from harness.deployment import AirflowApiError

        try:
            return str(self.api.request("GET", f"/variables/{LEDGER_VARIABLE}")["value"])
        except AirflowApiError as exc:
            if exc.status == 404:
                return None
            raise

    def reset_ledger(self) -> None:
        from credit_bot.ledger import LEDGER_VARIABLE
        from harness.deployment import AirflowApiError

        try:
            self.api.request("DELETE", f"/variables/{LEDGER_VARIABLE}")
        except AirflowApiError as exc:
            if exc.status != 404:
                raise


@contextmanager
def local_executor_runner(
    stack: Any, parallelism: int, events: bool = False, env: dict[str, str] | None = None
) -> Iterator[Runner]:
    """Real Airflow components under LocalExecutor (``parallelism`` slots) on PostgreSQL.

    ``harness.deployment`` starts scheduler, DAG processor and API server with the sandbox's
    connections and settings in their environment; runs are triggered through the REST API and the
    ledger is read there. The bench's private SQLite home is then only used for the parse probe.

    With ``events`` a triggerer is started too, then stopped once the deployment is up: the Slack
    watcher would otherwise start asset-triggered runs for every message the backlog cases post,
    racing the measured runs. :func:`event_latency` starts it again. ``env`` is added to every
    component's environment (the io-bound case points the warehouse connection elsewhere).
    """
    try:
        from harness.deployment import airflow_deployment, postgres_unreachable
    except ModuleNotFoundError:
        raise BenchError(
            "--executor local needs harness/deployment.py (LocalExecutor against PostgreSQL)"
        ) from None
    if why := postgres_unreachable():
        raise BenchError(f"--executor local: {why}")
    env = {
        **stack.environment(channel=IDLE_CHANNEL),
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "CREDIT_BOT_RETRY_DELAY_SECONDS": os.environ.get("CREDIT_BOT_RETRY_DELAY_SECONDS", "2"),
        # Task logs go to their files here, not into the table: log as production does.
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        **(env or {}),
    }
    progress(f"starting Airflow with LocalExecutor (parallelism {parallelism}) on PostgreSQL")
    with airflow_deployment("LocalExecutor", env=env, triggerer=events) as deployment:
        if events:
            deployment.stop_component("triggerer")
        deployment.wait_for_dag("credit_bot")
        deployment.api.set_paused("credit_bot", False)
        _let_scheduled_run_finish(deployment.api)
        yield DeploymentRunner(deployment, f"LocalExecutor, parallelism {parallelism}")


def _let_scheduled_run_finish(api: Any, appear_s: float = 15.0) -> None:
    """Unpausing makes the scheduler start the latest */10 interval's run; let it finish first.

    It reads the idle channel and answers nothing, but with ``max_active_runs=1`` it would delay
    the first measured run.
    """
    deadline = time.monotonic() + appear_s
    while time.monotonic() < deadline:
        runs = api.dag_runs("credit_bot")
        if runs:
            for run in runs:
                api.wait_for_run("credit_bot", run["dag_run_id"], timeout=300)
            return
        time.sleep(1)


RUNNERS: dict[str, Callable[..., Any]] = {"dag.test": dag_test_runner, "local": local_executor_runner}
