"""fetch_requests: this run's settings, then the channel (or the one message) read and the requests picked.

Every error here that a person must fix is a :class:`~credit_bot.errors.SetupError` (a setting, a
connection, the bot token's scopes, a notebook that cannot run): the DAG fails the task at once
with it, without retries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from credit_bot import intake, ledger
from credit_bot.model import (
    Announced,
    Ledger,
    Outcome,
    RequestDict,
    RequestOutcome,
    RequestReason,
    RunConfig,
    SlackMessage,
    Window,
)
from credit_bot.settings import SETTINGS_VARIABLE, Settings, SettingsError
from credit_bot.store import Store
from credit_bot.tasks.scopes import check_scopes

if TYPE_CHECKING:
    from slack_sdk import WebClient

log = logging.getLogger(__name__)

# The trigger form's choices; the REST API's true / false mean the same. Absent: the setting decides.
DRY_RUN_CHOICES = {"dry_run": True, "live": False}


# ── the settings ─────────────────────────────────────────────────────────────────────────────────
def load_settings(params: dict[str, object], store: Store) -> RunConfig:
    """Validated settings for this run, with the trigger params applied; fails early on bad config.

    Raises :class:`~credit_bot.settings.SettingsError` (or another setup error) for anything a
    person must fix: a setting, a param, a missing connection, a notebook that cannot run.
    """
    settings = Settings.from_json(store.settings_text())
    settings.validate()  # an unset Variable gives defaults, which still need looker_hosts
    channel, message_ts = _channel_and_message(params, settings.channel)
    _check_notebooks(settings)
    _check_connections()
    dry_run = dry_run_choice(params.get("dry_run"), settings.dry_run)
    if not dry_run and not settings.operators:
        log.warning("live mode with no 'operators' configured: failures will only be visible in the logs")
    log.info("channel %s, %s", channel, "DRY RUN (nothing is posted)" if dry_run else "LIVE")
    return {
        **settings.to_dict(),
        "channel": channel,
        "dry_run": dry_run,
        "message_ts": message_ts,
        "force": bool(params.get("force")),
    }


def _channel_and_message(params: dict[str, object], configured: str) -> tuple[str, str | None]:
    """The channel to read and the one message to work on (or ``None``), from the params."""
    param_channel = str(params.get("channel") or "").strip() or None
    channel = param_channel or configured
    message_ts = str(params.get("message_ts") or "").strip() or None
    if message_ts:
        ref_channel, message_ts = intake.parse_message_ref(message_ts, channel)
        if channel and ref_channel != channel:
            # Requests come only from the request channel; another one must be named on purpose.
            raise SettingsError(
                f"message {message_ts} is in channel {ref_channel}, not in {channel}; "
                f"set the run's 'channel' param to {ref_channel} to process it there"
            )
        channel = ref_channel
    if not channel:
        raise SettingsError(
            f"no channel to read: set 'channel' in the {SETTINGS_VARIABLE!r} Variable "
            "or the run's 'channel' param"
        )
    return channel, message_ts


def _check_notebooks(settings: Settings) -> None:
    for rule in settings.products:
        if rule.notebook:
            path = settings.notebook_path(rule)
            if "://" not in path and not Path(path).is_file():
                raise SettingsError(
                    f"product {rule.name!r}: notebook {path} does not exist (settings 'products')"
                )
            if "://" not in path:
                require_runnable(rule.name, path, settings.kernel_name)


def _check_connections() -> None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from credit_bot.looker import LOOKER_CONN_ID
    from credit_bot.settings import SLACK_CONN_ID

    for conn_id in (SLACK_CONN_ID, LOOKER_CONN_ID):
        try:
            BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            raise SettingsError(
                f"Airflow connection {conn_id!r} is missing: add it in Admin → Connections (see README)"
            ) from None


def require_runnable(product: str, path: str, kernel_name: str) -> None:
    """The quick part of the notebook check: a notebook that cannot run fails the run here, once,
    instead of once per request after a kernel start.

    Only certain findings stop the run. A heuristic one (a string that looks like a credential, an
    absolute path) is logged as a warning for a person to judge: a false alarm must not stop the bot.
    """
    from credit_bot import notebook_check

    try:
        findings = notebook_check.quick_findings(path, kernel_name)
    except notebook_check.NotebookUnreadable as exc:
        raise SettingsError(f"product {product!r}: {exc}") from None
    for finding in findings:
        if not finding.certain:
            log.warning("notebook %s, heuristic, not stopping the run: %s", path, finding.one_line())
        elif not finding.blocker:
            log.info("notebook %s, %s", path, finding.one_line())
    blockers = [f.one_line() for f in findings if f.blocker and f.certain]
    if blockers:
        raise SettingsError(
            f"product {product!r}: notebook {path} cannot run under CreditBot: {'; '.join(blockers)} "
            f"(every finding: make check-notebook NOTEBOOK={path})"
        )


def dry_run_choice(value: object, configured: bool) -> bool:
    """Whether this run is a dry run, from the ``dry_run`` param and the setting."""
    if value is None:
        return configured
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in DRY_RUN_CHOICES:
        return DRY_RUN_CHOICES[value]
    raise SettingsError(f'the \'dry_run\' param must be true, false, "dry_run" or "live", not {value!r}')


def settings_of(run: RunConfig) -> Settings:
    """The :class:`Settings` of a task's ``run`` (without the run's own params)."""
    return Settings.from_task_value(run)


# ── the requests ─────────────────────────────────────────────────────────────────────────────────
def history_start(book: Ledger, settings: Settings, now: datetime) -> str:
    """Oldest ts to read: the watermark, or earlier for requests still open, never past the window."""
    state = ledger.channel_state(book, settings.channel, settings.dry_run)
    floor = now - timedelta(hours=max(settings.lookback_hours, settings.link_wait_hours))
    start = now - timedelta(hours=settings.lookback_hours)
    if state["watermark"]:
        start = datetime.fromtimestamp(float(state["watermark"]), UTC)
    open_ts = [float(ts) for ts in ledger.open_requests(book, settings.channel, settings.dry_run)]
    if open_ts:
        start = min(start, datetime.fromtimestamp(min(open_ts) - 1e-6, UTC))
    return f"{max(start, floor).timestamp():.6f}"


def fetch_requests(
    run: RunConfig, store: Store, announced: list[Announced] | None = None
) -> tuple[list[RequestDict], Window]:
    """The requests to work on, and the window (newest ts read, expired link requests) for the ledger.

    ``announced`` are the messages Slack events named (Socket Mode, ``events.requests_from_asset_events``).
    A run they started works on those messages only, as the events carried them, and reads Slack
    only for what an event lacks (see ``_announced_messages``); it leaves the watermark alone, so
    the cron path still reads the channel's history and catches whatever no event announced.
    """
    from credit_bot import slack

    settings = settings_of(run)
    book = store.ledger()
    client = slack.slack_hook().client
    now = datetime.now(UTC)
    manual = bool(run["message_ts"])
    with _slack_setup_errors(settings.channel):
        identity = check_scopes(client, settings)  # before any other call: fails the run at once
        messages, closed = _read(client, run, settings, book, announced, now)
    selected, expired, notes = intake.select(
        messages,
        channel=settings.channel,
        book=book,
        dry_run=settings.dry_run,
        bot_user_id=identity.user_id,
        own_bot_id=identity.bot_id,
        request_bots=settings.request_bots,
        looker_hosts=settings.looker_hosts,
        max_attempts=settings.max_attempts,
        link_wait_hours=settings.link_wait_hours,
        force=run["force"],
        manual=manual,
        now=now,
    )
    requests = _with_thread_links(client, settings, selected, notes, closed)
    newest_ts = max((m["ts"] for m in messages), key=float, default=None)
    if len(requests) > settings.max_requests_per_run:
        requests = requests[: settings.max_requests_per_run]
        newest_ts = requests[-1].ts  # the rest is read again next run
        notes.append(f"more than {settings.max_requests_per_run} requests: the rest wait for the next run")
    for note in notes:
        log.info("%s", note)
    log.info("%d message(s) read, %d request(s) to work on", len(messages), len(requests))
    window: Window = {"newest_ts": None if manual or announced else newest_ts, "expired": expired + closed}
    return [r.as_dict() for r in requests], window


def _read(
    client: WebClient,
    run: RunConfig,
    settings: Settings,
    book: Ledger,
    announced: list[Announced] | None,
    now: datetime,
) -> tuple[list[SlackMessage], list[RequestOutcome]]:
    """The messages to look at (the one message, the announced ones, or the channel's history), and
    the open requests closed because their message is gone."""
    from credit_bot import slack

    if run["message_ts"]:
        found = slack.message(client, settings.channel, run["message_ts"])
        if found is None:
            raise LookupError(f"message {run['message_ts']} not found in channel {settings.channel}")
        return [found], []
    if announced:
        return _announced_messages(client, settings.channel, announced), []
    oldest = history_start(book, settings, now)
    messages = list(slack.history(client, settings.channel, oldest=oldest, page_size=settings.page_size))
    return messages, _recover_open(client, book, settings, oldest, messages)


@contextmanager
def _slack_setup_errors(channel: str) -> Iterator[None]:
    """Slack's answers that mean "fix the setup" as :class:`~credit_bot.slack.SlackSetupError`."""
    from slack_sdk.errors import SlackApiError

    from credit_bot import slack

    try:
        yield
    except SlackApiError as exc:
        setup = slack.reading_error(exc, channel)
        if setup is None:
            raise
        raise setup from None


def _with_thread_links(
    client: WebClient,
    settings: Settings,
    selected: list[intake.Request],
    notes: list[str],
    closed: list[RequestOutcome],
) -> list[intake.Request]:
    """The selected requests, those waiting for a link read with their thread's replies.

    A request whose thread still has no Looker link is left out and recorded as still waiting,
    with the newest reply read (``thread_checked``): the thread is read again only when someone
    replies anew.
    """
    from credit_bot import slack
    from credit_bot.links import looker_urls

    requests = []
    for request in selected:
        if request.reason == RequestReason.CHECK_THREAD:
            thread = slack.replies(client, settings.channel, request.ts)
            # Every requester reply, also one posted just before the bot asked for the link.
            added = [
                intake.message_text(r)
                for r in thread
                if intake.skip_reason({**r, "thread_ts": None}, None) is None
            ]
            if not looker_urls("\n".join(added), list(settings.looker_hosts)):
                notes.append(f"{request.ts}: still waiting for a Looker link")
                latest = max((r["ts"] for r in thread), key=float, default=request.ts)
                closed.append(
                    {
                        "ts": request.ts,
                        "outcome": Outcome.LINK_REQUESTED,
                        "dry_run": settings.dry_run,
                        "thread_checked": latest,
                    }
                )
                continue
            text = "\n".join([request.text, *added])
            request = replace(request, text=text, reason=RequestReason.LINK_ADDED)
        requests.append(request)
    return requests


def _announced_messages(client: WebClient, channel: str, announced: list[Announced]) -> list[SlackMessage]:
    """The announced requests of ``channel``: as their events carried them, else read one by one.

    An event lacks the message when it was a thread reply (the top-level request is read: its
    reply counters decide whether the thread is looked at) or when it was too large to carry.
    """
    from credit_bot import slack

    messages = []
    for item in announced:
        if item["channel"] != channel:
            continue
        found = item.get("message") or slack.message(client, channel, item["ts"])
        messages.extend([found] if found else [])
    return messages


def _recover_open(
    client: WebClient, book: Ledger, settings: Settings, oldest: str, messages: list[SlackMessage]
) -> list[RequestOutcome]:
    """Bring back open requests the history read did not return, so none is stranded.

    Open requests older than the read window (after an outage longer than the lookback) are
    fetched one by one and appended to ``messages``; open requests whose message is gone were
    deleted by their author and are closed. Returns those closing outcomes.
    """
    from credit_bot import slack

    seen = {m["ts"] for m in messages}
    missing = sorted(
        (ts for ts in ledger.open_requests(book, settings.channel, settings.dry_run) if ts not in seen),
        key=float,
    )
    closed: list[RequestOutcome] = []
    for ts in missing[: settings.max_requests_per_run]:
        found = slack.message(client, settings.channel, ts) if float(ts) <= float(oldest) else None
        if found is not None:
            messages.append(found)
            continue
        log.info("%s: the message was deleted; closing its request", ts)
        closed.append(
            {
                "ts": ts,
                "outcome": Outcome.DELETED,
                "dry_run": settings.dry_run,
                "last_error": "message deleted",
            }
        )
    return closed
