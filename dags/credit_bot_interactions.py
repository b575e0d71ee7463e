"""
### CreditBot interactions — the buttons clicked in Slack

Scheduled on the asset `credit_bot_slack_interactions`: the Socket Mode trigger (`credit_bot`'s
watcher in the triggerer) acknowledges each button click and hands it on as an event of that
asset. One task, `handle_clicks`, takes each click of the run:

* **Approve / Reject** (approval DMs): only the `approvers` (else the `operators`); answers that
  `credit_bot_approval` run's `decide` task through Airflow's REST API, as the Required actions
  page would, with the Slack user recorded in the response.
* **Retry now** (operator DMs): the operators and approvers; starts the forced one-message
  `credit_bot` run and replies under the DM with its link.
* Anyone else: an ephemeral "not taken", and a warning in this task's log.

Needs the connection `credit_bot_airflow_api` (README).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, get_current_context, task

from credit_bot.interactions import INTERACTIONS_DAG_ID, interactions_asset


@dag(
    dag_id=INTERACTIONS_DAG_ID,
    schedule=[interactions_asset()],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    # Clicks are answered as they come; a run gathers the clicks made while the last one was busy.
    max_active_runs=16,
    tags=["credit_bot", "slack"],
    doc_md=__doc__,
    # A retried click is harmless (a second answer is refused as already given, a retry run has the
    # click's own run id) but a person waits on it: one quick retry.
    default_args={"owner": "credit-bot", "retries": 1, "retry_delay": timedelta(seconds=5)},
)
def credit_bot_interactions():
    @task
    def handle_clicks() -> list[dict]:
        """Authorize each click, then approve / reject / retry; refused clicks get an ephemeral answer."""
        from credit_bot import interactions

        clicks = interactions.clicks_from_asset_events(get_current_context().get("triggering_asset_events"))
        return [interactions.handle(click) for click in clicks]

    handle_clicks()


dag = credit_bot_interactions()

if __name__ == "__main__":
    dag.test()
