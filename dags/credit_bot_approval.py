"""
### CreditBot approval — one run per reply that waits for an approver

Triggered by `credit_bot`'s `request_approval` task when the `approval` setting says a reply needs
a person's Approve (every amount, or amounts above a threshold). A run of its own, so a pending
approval holds up no `credit_bot` run: new requests keep being answered.

Flow: `ask` (DM each approver: permalink, proposed reply, per-mode parts, executed notebook,
**Approve** / **Reject** buttons) → `decide` (Airflow's human-in-the-loop task: answer it with a
button in Slack, in **Required actions** here, or through the REST API) → `post` (Approve: the
reply in the thread, once; Reject: nothing public; no decision within `approval_timeout_hours`:
the operators are told). `remind` sends one reminder after `approval_reminder_minutes`.

* **Waiting costs nothing**: `decide` waits in the `awaiting_input` state, in the metadata DB; a
  scheduler, triggerer or worker restart loses no pending approval.
* **The ledger** learns the decision at the next `credit_bot` run (its `record_ledger` is the
  ledger's only writer): `post` leaves it in the Variable `credit_bot_approval__<channel>__<ts>`.
* **Params** are set by `credit_bot`; trigger it by hand only to test.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from airflow.sdk import PokeReturnValue, dag, get_current_context, task

from credit_bot import alerts
from credit_bot.approval import APPROVAL_DAG_ID, DECIDE_TASK, CreditApprovalOperator

TASK_RETRIES = int(os.environ.get("CREDIT_BOT_TASK_RETRIES", "2"))
RETRY_DELAY = timedelta(seconds=int(os.environ.get("CREDIT_BOT_RETRY_DELAY_SECONDS", "30")))
# How often `remind` looks whether `decide` has its answer (and whether the reminder is due): the
# run ends within this long of a decision. A poke is a short task start in reschedule mode; no slot
# is held between pokes.
REMIND_POKE = float(os.environ.get("CREDIT_BOT_APPROVAL_POKE_SECONDS", "60"))


@dag(
    dag_id=APPROVAL_DAG_ID,
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    # One run per waiting reply: they must never queue behind each other.
    max_active_runs=200,
    on_failure_callback=alerts.on_dag_failure,
    tags=["credit_bot", "slack", "approval"],
    doc_md=__doc__,
    default_args={"owner": "credit-bot", "retries": TASK_RETRIES, "retry_delay": RETRY_DELAY},
    params={
        "channel": None,
        "ts": None,
        "attempt": 1,
        "label": "",
        "requester": "",
        "reply": "",
        "amount": "",
        "parts": "",
        "permalink": "",
        "links": [],
        "notebooks": [],
        "approvers": [],
        "reminder_minutes": 60,
        "timeout_hours": 24,
    },
)
def credit_bot_approval():
    @task
    def ask() -> list[dict]:
        """DM each approver the proposed reply and the Approve / Reject buttons (once)."""
        from credit_bot import approval

        context = get_current_context()
        return approval.ask(dict(context["params"]), context["dag"].dag_id, context["run_id"])

    # Waits (awaiting_input, no worker) until a button, Required actions or the REST API answers;
    # decides even when ask failed: the Airflow UI still works. Never retried: a retry would ask anew.
    decide = CreditApprovalOperator(task_id=DECIDE_TASK, trigger_rule="all_done", retries=0)

    @task.sensor(poke_interval=REMIND_POKE, mode="reschedule", timeout=timedelta(days=7).total_seconds())
    def remind(dms: list[dict] | None) -> PokeReturnValue:
        """One reminder to the approvers after approval_reminder_minutes; ends once decide has its answer."""
        from credit_bot import approval

        context = get_current_context()
        started = context["dag_run"].start_date or datetime.now(UTC)
        done = approval.remind(
            dict(context["params"]), dms, context["dag"].dag_id, context["run_id"], started
        )
        return PokeReturnValue(is_done=done)

    @task(trigger_rule="all_done", multiple_outputs=False)
    def post(decision: dict | None, dms: list[dict] | None) -> dict:
        """Approve: the reply in the thread, once. Reject: nothing. Timeout: the operators are told."""
        from credit_bot import approval

        return approval.post(dict(get_current_context()["params"]), decision, dms)

    dms = ask()
    dms >> decide
    remind(dms)
    post(decide.output, dms)


dag = credit_bot_approval()

if __name__ == "__main__":
    dag.test()
