"""
### CreditBot — answers Verify SMS-pumping credit requests in Slack

Every run reads the request channel, resolves each request's Looker link(s) to SQL, runs the
product's credit notebook with papermill (parameter `looker` = the SQL), and replies in the
post's thread `Approved, $X, exceptions`. A post without a Looker link gets a request for one;
PSMS requests are ignored silently; anything that fails goes to the operators by private DM,
never to the thread. **Dry-run is on by default**: everything runs, nothing is posted, and the
text that would have been posted is in the `post_results` logs.

Flow: `fetch_requests` → `resolve` (one per request) → `run_notebook` (one per request: its
Verify notebooks) → `post_results` (one per request) → `record_ledger` → `report_failures` (red
when a request's task failed or an operator DM could not be sent; its alert names only what no
request DM told), and `request_approval`: one `credit_bot_approval` run per reply that waits for
an approver (setting `approval`), so a pending approval holds nothing here.

* **When it runs**: every 10 minutes, and within seconds of a post when Slack Socket Mode is set up
  (connection `slack_app_default`; the triggerer watches the channel).
* **Reading a run**: mapped tasks are named after the request (`U… @ ts`); `post_results` adds
  the outcome (`→ answered $X`, `→ escalated`, …); the run's note (or `record_ledger`'s return
  value) sums it up. A red `post_results` can be cleared: it never posts a second reply.
* **In Slack**: 👀 when picked up, ✅ when answered, 🚨 when escalated; one DM per request per
  state change to the `operators` (a request failing on every attempt: its first failure, its
  give-up), and one alert for what no request DM told (settings, Slack, the ledger, a DM that could
  not be delivered). A run with a failed task stays red either way.
* **Settings**: Airflow Variable `credit_bot_settings` (JSON; every key documented in README).
* **Connections**: `slack_api_default` (bot token), `looker_default` (base URL, client id,
  client secret), `credit_warehouse_default` (the notebook's warehouse); optional
  `slack_app_default` (Socket Mode) and `credit_bot_airflow_api` (run notes).
* **State**: Airflow Variable `credit_bot_ledger`, written only by `record_ledger`
  (`make ledger` prints it).
* **Manual runs**: trigger with a `channel`, or one `message_ts` / pasted Slack permalink;
  `force` re-processes a request the ledger says is done; `dry_run` (As configured, Dry run,
  Live) overrides the setting.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, get_current_context, task

from credit_bot import alerts
from credit_bot.approval import APPROVAL_DAG_ID
from credit_bot.events import slack_asset
from credit_bot.notebooks import CreditNotebookOperator
from credit_bot.ui.links import request_task

if TYPE_CHECKING:
    from airflow.sdk import Context

    from credit_bot.model import (
        ApprovalRun,
        NotebookTask,
        Recorded,
        RequestDict,
        RequestOutcome,
        Resolved,
        RunConfig,
        Window,
    )

# Retry policy of every task; overridable from the environment so tests can use short delays.
TASK_RETRIES = int(os.environ.get("CREDIT_BOT_TASK_RETRIES", "2"))
RETRY_DELAY = timedelta(seconds=int(os.environ.get("CREDIT_BOT_RETRY_DELAY_SECONDS", "30")))
# A call that never answers (e.g. looker_sdk fetches its error docs with no timeout) must not hold
# the one active run forever; 30 minutes still covers a backlog read at Slack's tightest rate limit.
# run_notebook has its own limit, the 'notebook_timeout_seconds' setting.
TASK_TIMEOUT = timedelta(minutes=30)
# The safety-net tick; only the soak (harness.soak) compresses it, to play a day in minutes.
CRON = os.environ.get("CREDIT_BOT_CRON", "*/10 * * * *")


def _label_map_index(request: RequestDict) -> Context:
    """Name this mapped task instance after its request in the UI (map_index_template)."""
    from credit_bot import intake

    context = get_current_context()
    context["request_label"] = intake.Request(**request).label  # type: ignore[typeddict-unknown-key]
    return context


def _notebook_task(resolved: Resolved) -> NotebookTask:
    """run_notebook's arguments for one resolved request; Airflow calls it in that task."""
    from credit_bot.tasks.resolve import notebook_task

    return notebook_task(resolved)


def _materialize(lazy: Sequence[RequestOutcome | None]) -> list[RequestOutcome | None]:
    """Index a mapped task's lazy XCom sequence by its length; iterating it probes one past the end."""
    return [lazy[i] for i in range(len(lazy))]


@dag(
    dag_id="credit_bot",
    # Slack Socket Mode events (a trigger in the triggerer) start a run within seconds of a post; the
    # cron tick is the safety net for anything missed while the triggerer was down, and the only
    # path when no app-level token (connection slack_app_default) is configured.
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(CRON, timezone="UTC"),
        assets=slack_asset(),
    ),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    # The safety net: a DM for a red run that no task alerted about (called by the dag-processor,
    # even if a worker died). Every task but the per-request ones alerts on its own failure.
    on_failure_callback=alerts.on_dag_failure,
    tags=["credit_bot", "slack", "looker", "papermill"],
    doc_md=__doc__,
    default_args={
        "owner": "credit-bot",
        "retries": TASK_RETRIES,
        "retry_delay": RETRY_DELAY,
        "execution_timeout": TASK_TIMEOUT,
    },
    params={
        "channel": Param(
            None,
            type=["null", "string"],
            title="Channel ID",
            description="Slack channel ID to read (C…). Empty: the 'channel' setting.",
        ),
        "message_ts": Param(
            None,
            type=["null", "string"],
            title="One message",
            description="Process just this message: paste its Slack permalink (or its ts, "
            "1764000000.000100). A link from another channel than the settings' one needs that channel "
            "in Channel ID too.",
        ),
        # A labelled choice, not a toggle: an untouched toggle looked exactly like "off". The form
        # sends "dry_run" / "live"; REST callers keep sending true / false (or nothing).
        "dry_run": Param(
            None,
            type=["null", "string", "boolean"],
            enum=[None, "dry_run", "live", True, False],
            values_display={
                "null": "As configured (the 'dry_run' setting)",
                "dry_run": "Dry run — post nothing",
                "live": "Live — post replies",
                "true": "true (REST API value) — dry run",
                "false": "false (REST API value) — live",
            },
            title="Dry run or live",
            description="As configured: the 'dry_run' setting decides (dry run unless it is false). "
            "Dry run: everything runs, nothing is posted. Live: replies, reactions and DMs are posted.",
        ),
        "force": Param(
            False,
            type="boolean",
            title="Force",
            description="Off = normal. On: process the message again even if the ledger says it is done "
            "(use with One message); a reply already in its thread is still never posted twice.",
        ),
    },
)
def credit_bot() -> None:
    # Its alert quotes the cause: a setting to fix, Slack unreachable.
    @task(on_failure_callback=alerts.on_task_failure)
    def fetch_requests() -> list[RequestDict]:
        """Settings + params, then the channel (or the one message) read and the requests picked.

        Red = a setting or connection to fix (no retries; the log says which), or Slack unreachable.
        """
        from credit_bot import events
        from credit_bot.errors import setup_fails_the_task
        from credit_bot.store import VariableStore
        from credit_bot.tasks import fetch

        context = get_current_context()
        ti = context["ti"]
        # record_ledger runs even when this task fails: an empty run and window (a stored None reads
        # as a missing XCom) tell it there is nothing to record.
        ti.xcom_push(key="run", value={})
        ti.xcom_push(key="window", value={})
        store = VariableStore()
        with setup_fails_the_task():  # a SetupError fails the run at once, without retries
            run = fetch.load_settings(dict(context["params"]), store)
            ti.xcom_push(key="run", value=run)
            announced = events.requests_from_asset_events(context.get("triggering_asset_events"))
            requests, window = fetch.fetch_requests(run, store, announced=announced)
        ti.xcom_push(key="window", value=window)
        return requests

    # multiple_outputs=False on the tasks that return a dict: @task infers True from "-> dict" and
    # then pushes every key as an XCom of its own, an API round trip each (post_results: 17, all
    # at once for a burst); everything downstream reads the whole return value.
    @task(map_index_template="{{ request_label }}", multiple_outputs=False)
    def resolve(request: RequestDict, run: RunConfig) -> Resolved:
        """Looker links → SQL → product. Red = Looker failed: clear it once Looker is back."""
        from credit_bot.store import VariableStore
        from credit_bot.tasks import resolve as step

        context = _label_map_index(request)
        return step.resolve(request, run, context["run_id"], VariableStore())

    # @task with one addition: the "CreditBot request" extra link to the request's entry in the UI.
    @request_task(trigger_rule="all_done", map_index_template="{{ request_label }}", multiple_outputs=False)
    def post_results(request: RequestDict, run: RunConfig, resolved: Sequence[Resolved]) -> RequestOutcome:
        """Replies, asks for a link or DMs the operators. Safe to clear: it never posts a reply twice."""
        from credit_bot.store import VariableStore
        from credit_bot.tasks import post

        context = _label_map_index(request)
        ti = context["ti"]
        own = post.own_resolved(resolved, ti.map_index, request["ts"])
        task = {"run_id": ti.run_id, "map_index": ti.map_index}
        outcome = post.post_results(request, run, own, ti.log_url, VariableStore(), task)
        # Rendered after the task ran: the UI names this task instance after the request and its outcome.
        context["request_label"] += f" → {outcome['status']}"  # type: ignore[typeddict-unknown-key]
        return outcome

    @task(trigger_rule="all_done", multiple_outputs=False, on_failure_callback=alerts.on_task_failure)
    def record_ledger(
        outcomes: Sequence[RequestOutcome | None],
        requests: list[RequestDict] | None,
        run: RunConfig | None,
        window: Window | None,
    ) -> Recorded:
        """Writes every outcome to the ledger Variable and the run's summary note."""
        from credit_bot.store import VariableStore
        from credit_bot.tasks import record

        if not run or requests is None or not window:
            from airflow.sdk.exceptions import AirflowSkipException

            # The run still ends failed (report_failures is upstream-failed by fetch_requests), and
            # fetch_requests stays the only failed task: the failure alert names it and links its log.
            # The ledger is unchanged, so the next run reads the same messages again.
            raise AirflowSkipException("nothing to record: fetch_requests failed, see its log")
        ti = get_current_context()["ti"]
        recorded = record.record_ledger(run, requests, window, _materialize(outcomes), VariableStore())
        record.set_run_note(ti.dag_id, ti.run_id, recorded["summary"])
        # The replies waiting for an approver, for request_approval (after the ledger says so).
        ti.xcom_push(key="approvals", value=recorded.pop("approvals", []))
        return recorded

    # A failure here is no request's to tell: it alerts on its own.
    @task(on_failure_callback=alerts.on_task_failure)
    def approvals(runs: list[ApprovalRun] | None) -> list[ApprovalRun]:
        """The replies waiting for an approver (after the ledger says so): request_approval's kwargs."""
        return runs or []

    # Its alert names only what no request DM told; none when they told it all (the run stays red).
    @task(on_failure_callback=alerts.on_task_failure)
    def report_failures(recorded: Recorded, requests: list[RequestDict]) -> None:
        """Red = a request's task failed, or an operator DM could not be sent (the ledger is written).

        Never a green run over a failure; an alert only for what the requests' DMs did not tell.
        """
        from credit_bot.tasks import report

        ti = get_current_context()["ti"]
        # Every post_results return value, one request (map index) each, in one read; not an
        # argument: this task must run when a post_results failed.
        outcomes = ti.xcom_pull(task_ids=["post_results"])
        report.report_failures(ti.dag_id, ti.run_id, recorded, requests, outcomes)

    requests = fetch_requests()
    run = requests["run"]  # the settings with this run's params, pushed by fetch_requests
    resolved = resolve.partial(run=run).expand(request=requests)
    notebooks = CreditNotebookOperator.partial(
        task_id="run_notebook",
        map_index_template="{{ task.request_label }}",
        # One per request that resolved (a failed resolve is retried by the next run; the others
        # go on): its Verify notebooks, or a skip when it has none.
        trigger_rule="all_done",
        # Notebook errors are mostly deterministic and costly to repeat: one quick retry (kernel
        # death, a blip), then later runs retry up to max_attempts.
        retries=min(TASK_RETRIES, 1),
    ).expand_kwargs(resolved.map(_notebook_task))
    outcomes = post_results.partial(run=run, resolved=resolved).expand(request=requests)
    # post_results reads what run_notebook wrote through the executed notebooks, not through XCom
    # (run_notebook is mapped over the resolve outputs that exist, not over the requests): the one
    # edge that data flow cannot draw.
    notebooks >> outcomes
    recorded = record_ledger(outcomes, requests, run, requests["window"])
    # Also straight after fetch_requests: when it fails, this leaf is upstream-failed, the run fails.
    report_failures(recorded, requests)
    # One credit_bot_approval run per reply that waits for an approver ('approval' setting; none by
    # default: this maps to nothing). Runs of their own, so a pending approval holds no run here.
    TriggerDagRunOperator.partial(
        task_id="request_approval",
        trigger_dag_id=APPROVAL_DAG_ID,
        skip_when_already_exists=True,  # a request redone after a lost ledger write is not asked twice
        on_failure_callback=alerts.on_task_failure,  # a failed hand-over is no request DM's to tell
    ).expand_kwargs(approvals(recorded["approvals"]))


dag = credit_bot()

if __name__ == "__main__":
    dag.test()
