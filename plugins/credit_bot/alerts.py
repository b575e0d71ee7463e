"""Failure alerts: tell the operators by Slack DM when CreditBot itself fails, once per problem.

A bad request is DMed by ``post_results`` (its first failure, then its give-up); this is for what no
request DM tells: the settings, Slack or the ledger failing, or an operator DM that could not be
delivered. A run stays red whenever a task failed, so Airflow's own views keep their meaning, but a
red run whose every problem a request DM already told alerts nobody: a request that fails on every
attempt costs the operators two DMs over its life, not one more per red run.

Where it runs (Airflow 3.3). The run's own tasks alert on their failure: every task but the
per-request ones (``fetch_requests``, ``record_ledger``, ``report_failures`` — the leaf that fails a
run whose ledger *was* written, for a request's task that failed or an operator DM that reached
nobody — and the approval hand-over) has ``on_task_failure`` as its ``on_failure_callback``. Airflow
calls it once the task has failed for good (not per retry), in the task process with
``context["exception"]``: the alert quotes the cause in one line, the error CreditBot raised
(``SettingsError: product 'verify': notebook … cannot run under CreditBot: …``), not Airflow's
wrapper around it. When the task process was lost (worker died, OOM), the scheduler sends a
``TaskCallbackRequest`` and the dag-processor calls it there, without the exception: the alert names
the task and links its log. ``report_failures`` says what the request DMs did not: when they told
everything, it fails the run with an :class:`AlreadyTold` cause and its callback stays silent. The
request tasks (``resolve``, ``run_notebook``, ``post_results``) have no alert of their own:
``post_results`` DMs about the request, ``report_failures`` about the rest.

The DAG's ``on_failure_callback``, ``on_dag_failure``, is the safety net for a red run no task
alerted about (a deadlock, a task without its own alert). The scheduler sends it to the
dag-processor, which calls it with the context of the failed task instance that finished last
plus ``reason`` (``dag_processing/processor.py: _execute_dag_callbacks``; ``dag.test()`` runs it
in-process). When that task has ``on_task_failure`` it has already spoken (or stayed silent on
purpose), so the DAG callback says nothing: one alert per problem.

Recipients: the ``operators`` of the ``credit_bot_settings`` Variable, read when the callback
runs (never at parse). Without operators, or for a DM Slack refuses (deactivated operator, bad
id): the settings' ``alert_channel``, else the Slack channel or user in the environment variable
``CREDIT_BOT_ALERT_CHANNEL`` (also when the Variable is missing or unreadable, often the very
failure), else only the log. Alerts are sent in live mode only; in dry-run they are logged. Sent
through the Slack provider's ``SlackNotifier`` on ``slack_api_default``.

Cheap to import at DAG parse time: Airflow, the provider and ``slack_sdk`` are imported only
when a callback runs.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from credit_bot.errors import AlreadyTold as AlreadyTold  # report_failures raises it; named here too
from credit_bot.errors import CreditBotError
from credit_bot.replies import defang
from credit_bot.settings import SETTINGS_VARIABLE, SLACK_CONN_ID, Settings
from credit_bot.store import Store, VariableStore

log = logging.getLogger(__name__)

ALERT_CHANNEL_ENV = "CREDIT_BOT_ALERT_CHANNEL"
NEXT_STEP = (
    "the next scheduled run tries again; the ledger is unchanged by this run, so its requests "
    "are picked up again (a reply already posted is found in its thread, not repeated)"
)
# The leaf that fails a run whose ledger *was* written (credit_bot.tasks.report.report_failures).
REPORT_TASK = "report_failures"
REPORT_ERROR = "a request's task failed, or an operator DM about a request could not be sent"
REPORT_NEXT_STEP = (
    "the ledger has this run's outcomes: failed requests are tried again at the next run (up to "
    "max_attempts), then escalated; the report_failures log names each request task and message"
)

# Token-shaped text that must not leave the process even when no masker knows it.
_SECRET_PATTERNS = (
    re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+"),  # Slack bot/user tokens
    re.compile(r"\bxapp-[A-Za-z0-9-]+"),  # Slack app-level tokens
    re.compile(r"(?i)\b(token|password|passwd|secret|client_secret)(\s*[=:]\s*)[^\s,;&'\"]+"),
    re.compile(r"(?i)\b(bearer)(\s+)[^\s,;&'\"]+"),
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),  # user:password@ in URLs
)


@dataclass(frozen=True)
class Audience:
    """Who gets the alert, and whether it is only logged (dry-run or nobody to tell)."""

    recipients: tuple[str, ...]
    dry_run: bool
    source: str
    fallback: str = ""  # where the alert goes when a DM to a recipient cannot be sent


def on_dag_failure(context: Mapping[str, Any]) -> None:
    """DAG ``on_failure_callback`` (runs in the dag-processor): a DM for a red run no task alerted about."""
    ti = context.get("ti") or context.get("task_instance")
    if context.get("reason") == "task_failure" and alerts_on_its_own(getattr(ti, "task", None)):
        log.info(
            "run %s failed at task %s, whose own failure callback alerts: no second alert",
            context.get("run_id") or getattr(ti, "run_id", "?"),
            getattr(ti, "task_id", "?"),
        )
        return
    notify_failure(context)


def on_task_failure(context: Mapping[str, Any]) -> None:
    """Task ``on_failure_callback``: one DM when this task has failed for good (runs in the task).

    Silent when the failure's cause is :class:`AlreadyTold`: the requests' DMs said it all.
    """
    exception = context.get("exception")
    if isinstance(exception, BaseException) and already_told(exception):
        log.info("no failure alert: %s", one_line(exception))
        return
    notify_failure(context)


def alerts_on_its_own(task: Any) -> bool:
    """Whether ``task`` alerts on its own failure (``on_task_failure`` is its failure callback).

    The dag-processor hands the DAG callback the parsed task, with its callbacks; ``dag.test()``
    the serialized one, which only knows that it has one (every task callback here is ours).
    """
    callbacks = getattr(task, "on_failure_callback", None)
    if callbacks:
        return on_task_failure in (callbacks if isinstance(callbacks, list) else [callbacks])
    return getattr(task, "has_on_failure_callback", False) is True


def already_told(exception: BaseException) -> bool:
    """Whether ``exception`` is, or was raised from, an :class:`AlreadyTold`."""
    seen: BaseException | None = exception
    for _ in range(10):  # a cause chain is short; never loop on a cyclic one
        if seen is None:
            return False
        if isinstance(seen, AlreadyTold):
            return True
        seen = seen.__cause__
    return False


def notify_failure(context: Mapping[str, Any]) -> list[str]:
    """Send (or in dry-run, log) the failure alert; returns who it was sent to.

    A Slack error is logged, not raised: a failing callback would only add a traceback to the
    dag-processor's log, which nobody reads.
    """
    text = failure_text(context)
    audience = audience_for(context)
    if not audience.recipients:
        log.error(
            "CreditBot failure alert (no operators and no %s to send it to):\n%s", ALERT_CHANNEL_ENV, text
        )
        return []
    if audience.dry_run:
        log.warning("DRY RUN: would send this failure alert to %s:\n%s", ", ".join(audience.recipients), text)
        return []
    sent = []
    recipients = list(audience.recipients)
    for recipient in recipients:
        try:
            _send(recipient, text, context)
        except Exception as exc:  # one unreachable operator must not stop the others' alerts
            log.error("could not send the failure alert to %s: %s", recipient, one_line(exc))
            if audience.fallback and audience.fallback not in recipients:
                recipients.append(audience.fallback)  # a DM Slack refused: the alert channel instead
        else:
            sent.append(recipient)
    log.info("failure alert sent to %s (%s)", ", ".join(sent) or "nobody", audience.source)
    return sent


def _send(recipient: str, text: str, context: Mapping[str, Any]) -> None:
    from airflow.providers.slack.notifications.slack import SlackNotifier

    notifier = SlackNotifier(
        slack_conn_id=SLACK_CONN_ID,
        channel=recipient,  # a user ID posts into the app's DM with that user
        text=text,
        username="CreditBot",
        unfurl_links=False,
        unfurl_media=False,
    )
    # notify(), not notifier(context): calling it renders ``text`` as a Jinja template, and the
    # exception text is not ours to template ("{{ conn.… }}" would be filled in).
    notifier.notify(dict(context))


def audience_for(context: Mapping[str, Any], store: Store | None = None) -> Audience:
    """Operators and mode from the settings Variable; the env fallback when it cannot be read."""
    params = context.get("params") or {}
    param_dry_run = params.get("dry_run") if isinstance(params.get("dry_run"), bool) else None
    settings = _read_settings(store or VariableStore())
    fallback = os.environ.get(ALERT_CHANNEL_ENV, "").strip()
    source = f"${ALERT_CHANNEL_ENV}"
    if settings is not None:
        if settings.alert_channel:
            fallback, source = settings.alert_channel, f"'alert_channel' in {SETTINGS_VARIABLE!r}"
        dry_run = param_dry_run if param_dry_run is not None else settings.dry_run
        if settings.operators:
            return Audience(settings.operators, dry_run, f"operators in {SETTINGS_VARIABLE!r}", fallback)
    else:
        # Mode unknown; naming a fallback channel is the deployment's explicit opt-in to be told.
        dry_run = bool(param_dry_run)
    return Audience((fallback,) if fallback else (), dry_run, source, fallback)


def _read_settings(store: Store) -> Settings | None:
    """The settings as far as they can be read (:meth:`Settings.lenient`), or ``None``."""
    try:
        text = store.settings_text()
    except Exception as exc:  # secrets backend down, API unreachable: the alert must still go out
        log.warning("cannot read %r for the failure alert: %s", SETTINGS_VARIABLE, one_line(exc))
        return None
    settings = Settings.lenient(text)
    if settings is None and text:
        log.warning("%r is not a JSON object: no operators to alert", SETTINGS_VARIABLE)
    return settings


def failure_text(context: Mapping[str, Any]) -> str:
    """The alert: what failed, the error in one line, where the log is, and what happens next."""
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None) or "credit_bot"
    run_id = context.get("run_id") or getattr(ti, "run_id", None) or "?"
    task_id = getattr(ti, "task_id", None)
    map_index = getattr(ti, "map_index", None)
    if task_id and isinstance(map_index, int) and map_index >= 0:
        task_id = f"{task_id}[{map_index}]"
    exception = context.get("exception")
    next_step = REPORT_NEXT_STEP if task_id == REPORT_TASK else NEXT_STEP
    if exception is not None:
        error = cause(exception)
    elif task_id == REPORT_TASK:
        error = REPORT_ERROR
    else:
        error = f"task {task_id} failed" if task_id else "the run failed"
        reason = context.get("reason")
        if reason and reason != "task_failure":
            error += f" ({reason})"
        error += "; the error is in its log"
    lines = [
        f":rotating_light: CreditBot failed: DAG {dag_id}, run {defang(str(run_id), 200)}"
        + (f", task {task_id}" if task_id else ""),
        f"• Error: {defang(error, 300)}",
    ]
    lines.append(f"• Airflow log: {defang(_log_url(ti, dag_id, str(run_id)), 1000)}")
    lines.append(f"• Next: {next_step}")
    return "\n".join(lines)


def cause(exception: BaseException) -> str:
    """The failure in one line: the error CreditBot raised, not Airflow's wrapper around it.

    A CreditBot error a task re-raised as Airflow's ``AirflowFailException`` (a setup error fails at
    once, without retries) is named by its own class (``SettingsError: product 'verify': …``). Any
    other ``AirflowFailException`` tells nothing by its name: its cause when it was raised ``from``
    one, else its message.
    """
    from airflow.sdk.exceptions import AirflowFailException

    if isinstance(exception.__cause__, CreditBotError):
        return one_line(exception.__cause__)
    if isinstance(exception, AirflowFailException):
        if exception.__cause__ is not None:
            return one_line(exception.__cause__)
        return one_line(str(exception)) or one_line(exception)
    return one_line(exception)


def one_line(exc: BaseException | str) -> str:
    """``Type: first line of the message``, without secrets."""
    if isinstance(exc, BaseException):
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    else:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return redact(text)


def redact(text: str) -> str:
    """Secrets Airflow knows of (connection passwords it fetched) and token-shaped text masked."""
    from airflow.sdk._shared.secrets_masker import redact as airflow_redact

    text = str(airflow_redact(text))
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(_mask, text)
    return text


def _mask(match: re.Match[str]) -> str:
    if match.lastindex and match.lastindex >= 2:  # keep the "password=" part, mask the value
        return f"{match.group(1)}{match.group(2)}***"
    return "***"


def _log_url(ti: Any, dag_id: str, run_id: str) -> str:
    """The failed task's log, or the run's page when the context names no task instance."""
    url = getattr(ti, "log_url", None)
    if url:
        return str(url)
    from airflow.sdk.configuration import conf

    base_url = conf.get("api", "base_url", fallback="http://localhost:8080/")
    return f"{base_url.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}"
