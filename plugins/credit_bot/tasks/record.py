"""record_ledger: every request's outcome into the ledger (its one writer), then the tidying up.

The decisions the ``credit_bot_approval`` runs wrote since are merged in too (``approval``). After
the ledger is written: the posting markers and approval decisions of the recorded requests are
dropped, executed notebooks past their retention are removed, and the run's summary becomes its
note in the UI.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from urllib.parse import quote

from credit_bot import ledger
from credit_bot.model import Outcome, Recorded, RequestDict, RequestOutcome, RunConfig, Window
from credit_bot.money import format_usd
from credit_bot.settings import Settings
from credit_bot.store import Store
from credit_bot.tasks.fetch import settings_of
from credit_bot.tasks.post import request_markers
from credit_bot.tasks.slack_side import SlackSide

log = logging.getLogger(__name__)

AIRFLOW_API_CONN_ID = "credit_bot_airflow_api"


def record_ledger(
    run: RunConfig,
    requests: list[RequestDict],
    window: Window,
    outcomes: list[RequestOutcome | None],
    store: Store,
) -> Recorded:
    """Merge every request's outcome into the ledger Variable (the one writer of it)."""
    settings = settings_of(run)
    by_ts = {o["ts"]: o for o in outcomes if o}
    merged = list(window["expired"])
    for request in requests:
        merged.append(by_ts.get(request["ts"]) or _unfinished(request, settings, store))
    book = store.ledger()
    from credit_bot import approval  # imports the HITL operator: only in the task

    # Decisions the credit_bot_approval runs wrote since: merged here, the ledger's one writer.
    decided = approval.decided_outcomes(book, settings, merged, store)
    merged += decided
    ledger.record(
        book,
        channel=settings.channel,
        dry_run=settings.dry_run,
        outcomes=merged,
        newest_ts=window["newest_ts"],
        retention_days=settings.ledger_retention_days,
    )
    store.save_ledger(book)
    # Only now are the posting markers redundant; a request without an outcome keeps its markers.
    # A request closed here without a task of its own (deleted, expired) may have left some behind
    # in an earlier run whose post_results failed.
    done = {m for o in [*by_ts.values(), *decided] for m in o.get("markers", [])}
    for closed in window["expired"]:
        done |= set(request_markers(settings.channel, closed["ts"]))
    store.drop_markers(done)
    removed = remove_old_notebooks(settings)
    counts: dict[str, int] = {}
    for outcome in merged:
        name = str(outcome.get("outcome"))
        counts[name] = counts.get(name, 0) + 1
    log.info("ledger updated: %s", counts or "nothing new")
    undelivered = {o["ts"]: o["undelivered"] for o in merged if o.get("undelivered")}
    return {
        "counts": counts,
        "summary": run_summary(merged, settings.dry_run) + approval.note(merged),
        "undelivered": undelivered,
        "notebooks_removed": removed,
        "approvals": approval.to_trigger(merged),
    }


def _unfinished(request: RequestDict, settings: Settings, store: Store) -> RequestOutcome:
    """The outcome of a request whose post_results task failed: retried next run, or escalated at last."""
    error = "post_results did not finish; see its task log"
    outcome: RequestOutcome = {
        "ts": request["ts"],
        "dry_run": settings.dry_run,
        "attempts": request["attempt"],
    }
    if request["attempt"] <= settings.max_attempts:
        return {**outcome, "outcome": Outcome.RETRYING, "last_error": error}
    error = f"gave up after {request['attempt']} attempts: {error}"
    slack = SlackSide(settings, store)
    try:
        slack.tell_operators(
            request,
            {"error": error},
            None,
            state=Outcome.ESCALATED,
            next_step="CreditBot leaves this request alone; re-run it with force=true once fixed",
        )
    except Exception as exc:  # the ledger must still be written; the failed DM is in this log
        log.exception("could not DM the operators about %s", request["ts"])
        slack.undelivered = f"the escalation DM failed ({type(exc).__name__})"
    closed: RequestOutcome = {**outcome, "outcome": Outcome.ESCALATED, "last_error": error}
    if slack.undelivered:
        closed["undelivered"] = slack.undelivered
    return closed


def remove_old_notebooks(settings: Settings) -> int:
    """Delete executed notebooks older than ``notebook_retention_days`` (local or object storage).

    Runs after the ledger is written and never fails the run: a storage error is logged, and the
    next run tries again.
    """
    from credit_bot.notebook_store import NotebookStore

    try:
        removed = NotebookStore(settings.output_dir).remove_older_than(settings.notebook_retention_days)
    except OSError as exc:
        log.warning("could not remove old executed notebooks from %s: %s", settings.output_dir, exc)
        return 0
    return len(removed)


_SUMMARY_ORDER = [
    Outcome.ANSWERED,
    Outcome.LINK_REQUESTED,
    Outcome.ESCALATED,
    Outcome.RETRYING,
    Outcome.IGNORED,
]


def run_summary(outcomes: list[RequestOutcome], dry_run: bool) -> str:
    """One line for the DAG run's note: ``3 requests: 2 answered ($1,204.10 total), 1 escalated``."""
    if not outcomes:
        return "Nothing new" + (" (dry run)" if dry_run else "")
    names = [str(o.get("outcome")) for o in outcomes]
    order = [str(name) for name in _SUMMARY_ORDER]
    order += sorted(set(names) - set(order))
    parts = []
    for name in order:
        done = [o for o, n in zip(outcomes, names, strict=True) if n == name]
        if not done:
            continue
        part = f"{len(done)} {name.replace('_', ' ')}"
        if name == Outcome.ANSWERED:
            total = sum((Decimal(str(o["amount"])) for o in done if o.get("amount")), Decimal("0"))
            part += f" ({format_usd(total)} total)"
        parts.append(part)
    noun = "request" if len(outcomes) == 1 else "requests"
    return f"{len(outcomes)} {noun}: " + ", ".join(parts) + (" — DRY RUN, nothing posted" if dry_run else "")


def set_run_note(dag_id: str, run_id: str, note: str) -> bool:
    """Show ``note`` on the DAG run in the Airflow UI, through Airflow's REST API.

    A task cannot set its run's note through the Task SDK, so this uses the public API with the
    optional connection ``credit_bot_airflow_api`` (host = the api-server's URL, login/password of
    a user allowed to edit DAG runs). Without it the summary is only logged and returned.
    """
    import requests
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(AIRFLOW_API_CONN_ID)
    except AirflowNotFoundException:
        log.info("run note not set: no %r connection (see README)", AIRFLOW_API_CONN_ID)
        return False
    base = (conn.host or "").rstrip("/")
    if conn.port:
        base = f"{base}:{conn.port}"
    try:
        token = requests.post(
            f"{base}/auth/token", json={"username": conn.login, "password": conn.password}, timeout=10
        )
        token.raise_for_status()
        response = requests.patch(
            f"{base}/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}",
            params={"update_mask": "note"},
            json={"note": note},
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=10,
        )
        response.raise_for_status()
    except requests.RequestException as exc:  # a note is a convenience: never fail the ledger for it
        log.warning("run note not set: %s", type(exc).__name__)
        return False
    return True
