"""The work behind each task of the ``credit_bot`` DAG, in the order the DAG runs them.

The DAG file only wires these together; each function takes and returns small JSON values.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from credit_bot import intake, ledger, replies
from credit_bot.money import format_usd, to_cents
from credit_bot.posting import SlackSide
from credit_bot.settings import SETTINGS_VARIABLE, Settings, SettingsError

if TYPE_CHECKING:
    from slack_sdk import WebClient

log = logging.getLogger(__name__)


# ── fetch_requests: the settings ───────────────────────────────────────────────────────────────
def load_settings(params: dict[str, Any]) -> dict[str, Any]:
    """Validated settings for this run, with the trigger params applied; fails early on bad config.

    A :class:`SettingsError` fails the task without its retries: retrying cannot fix a setting.
    """
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return _load_settings(params)
    except SettingsError as exc:
        raise AirflowFailException(f"SettingsError: {exc}") from exc


def _load_settings(params: dict[str, Any]) -> dict[str, Any]:
    from airflow.sdk import BaseHook, Variable
    from airflow.sdk.exceptions import AirflowNotFoundException

    from credit_bot.looker import LOOKER_CONN_ID
    from credit_bot.settings import SLACK_CONN_ID

    settings = Settings.from_json(Variable.get(SETTINGS_VARIABLE, default=None))
    settings.validate()  # an unset Variable gives defaults, which still need looker_hosts
    param_channel = (params.get("channel") or "").strip() or None
    channel = param_channel or settings.channel
    message_ts = (params.get("message_ts") or "").strip() or None
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
    for rule in settings.products:
        if rule.notebook:
            path = settings.notebook_path(rule)
            if "://" not in path and not Path(path).is_file():
                raise SettingsError(
                    f"product {rule.name!r}: notebook {path} does not exist (settings 'products')"
                )
            if "://" not in path:
                _require_runnable(rule.name, path, settings.kernel_name)
    for conn_id in (SLACK_CONN_ID, LOOKER_CONN_ID):
        try:
            BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            raise SettingsError(
                f"Airflow connection {conn_id!r} is missing: add it in Admin → Connections (see README)"
            ) from None
    dry_run = dry_run_choice(params.get("dry_run"), settings.dry_run)
    if not dry_run and not settings.operators:
        log.warning("live mode with no 'operators' configured: failures will only be visible in the logs")
    run = settings.to_dict()
    run.update(channel=channel, dry_run=dry_run, message_ts=message_ts, force=bool(params.get("force")))
    log.info("channel %s, %s", channel, "DRY RUN (nothing is posted)" if dry_run else "LIVE")
    return run


def _require_runnable(product: str, path: str, kernel_name: str) -> None:
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


# The trigger form's choices; the REST API's true / false mean the same. Absent: the setting decides.
DRY_RUN_CHOICES = {"dry_run": True, "live": False}


def dry_run_choice(value: Any, configured: bool) -> bool:
    """Whether this run is a dry run, from the ``dry_run`` param and the setting."""
    if value is None:
        return configured
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in DRY_RUN_CHOICES:
        return DRY_RUN_CHOICES[value]
    raise SettingsError(f'the \'dry_run\' param must be true, false, "dry_run" or "live", not {value!r}')


def _settings(run: dict[str, Any]) -> Settings:
    return Settings.from_task_value({k: v for k, v in run.items() if k not in ("message_ts", "force")})


# ── fetch_requests: the requests ───────────────────────────────────────────────────────────────
def history_start(book: dict[str, Any], settings: Settings, now: datetime) -> str:
    """Oldest ts to read: the watermark, or earlier for requests still open, never past the window."""
    state = ledger.channel_state(book, settings.channel, settings.dry_run)
    floor = now - timedelta(hours=max(settings.lookback_hours, settings.link_wait_hours))
    start = now - timedelta(hours=settings.lookback_hours)
    if state.get("watermark"):
        start = datetime.fromtimestamp(float(state["watermark"]), UTC)
    open_ts = [float(ts) for ts, e in state["requests"].items() if e.get("outcome") in ledger.OPEN]
    if open_ts:
        start = min(start, datetime.fromtimestamp(min(open_ts) - 1e-6, UTC))
    return f"{max(start, floor).timestamp():.6f}"


def fetch_requests(
    run: dict[str, Any], announced: list[dict[str, Any]] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The requests to work on, and the window (newest ts read, expired link requests) for the ledger.

    ``announced`` are the messages Slack events named (Socket Mode, ``events.requests_from_asset_events``).
    A run they started works on those messages only, as the events carried them, and reads Slack
    only for what an event lacks (see ``_announced_messages``); it leaves the watermark alone, so
    the cron path still reads the channel's history and catches whatever no event announced.
    """
    from airflow.sdk import Variable

    from credit_bot import slack
    from credit_bot.links import looker_urls

    settings = _settings(run)
    book = ledger.loads(Variable.get(ledger.LEDGER_VARIABLE, default=None))
    client = slack.slack_hook().client
    now = datetime.now(UTC)
    manual = bool(run["message_ts"])
    closed: list[dict[str, Any]] = []
    with _slack_setup_errors(settings.channel):
        identity = check_scopes(client, settings)  # before any other call: fails the run at once
        if manual:
            found = slack.message(client, settings.channel, run["message_ts"])
            if found is None:
                raise LookupError(f"message {run['message_ts']} not found in channel {settings.channel}")
            messages = [found]
        elif announced:
            messages = _announced_messages(client, settings.channel, announced)
        else:
            oldest = history_start(book, settings, now)
            messages = list(
                slack.history(client, settings.channel, oldest=oldest, page_size=settings.page_size)
            )
            closed = _recover_open(client, book, settings, oldest, messages)
    selected, expired, notes = intake.select(
        messages,
        channel=settings.channel,
        book=book,
        dry_run=settings.dry_run,
        bot_user_id=identity.get("user_id"),
        own_bot_id=identity.get("bot_id"),
        request_bots=settings.request_bots,
        looker_hosts=settings.looker_hosts,
        max_attempts=settings.max_attempts,
        link_wait_hours=settings.link_wait_hours,
        force=run["force"],
        manual=manual,
        now=now,
    )
    requests = []
    for request in selected:
        if request.reason == "check_thread":
            thread = slack.replies(client, settings.channel, request.ts)
            # Every requester reply, also one posted just before the bot asked for the link.
            added = [
                intake.message_text(r)
                for r in thread
                if intake.skip_reason({**r, "thread_ts": None}, None) is None
            ]
            if not looker_urls("\n".join(added), list(settings.looker_hosts)):
                notes.append(f"{request.ts}: still waiting for a Looker link")
                # Read up to here: the thread is read again only when someone replies anew.
                latest = max((r["ts"] for r in thread), key=float, default=request.ts)
                closed.append(
                    {
                        "ts": request.ts,
                        "outcome": ledger.LINK_REQUESTED,
                        "dry_run": settings.dry_run,
                        "thread_checked": latest,
                    }
                )
                continue
            request = replace(request, text="\n".join([request.text, *added]), reason="link_added")
        requests.append(request)
    newest_ts = max((m["ts"] for m in messages), key=float, default=None)
    if len(requests) > settings.max_requests_per_run:
        requests = requests[: settings.max_requests_per_run]
        newest_ts = requests[-1].ts  # the rest is read again next run
        notes.append(f"more than {settings.max_requests_per_run} requests: the rest wait for the next run")
    for note in notes:
        log.info("%s", note)
    log.info("%d message(s) read, %d request(s) to work on", len(messages), len(requests))
    window = {"newest_ts": None if manual or announced else newest_ts, "expired": expired + closed}
    return [r.as_dict() for r in requests], window


def _announced_messages(
    client: WebClient, channel: str, announced: list[dict[str, Any]]
) -> list[dict[str, Any]]:
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


# ── fetch_requests: the bot token's scopes ─────────────────────────────────────────────────────
def needed_scopes(settings: Settings) -> tuple[list[str], list[str]]:
    """The scopes this run needs (``"a|b"``: either), and those only going live needs.

    Derived from the calls the bot makes: reading the channel always; posting when live (or a
    dry-run preview); the DM scopes when there are operators to DM; reactions when they are on.
    """
    reading = ["channels:history|groups:history"]
    posting: list[str] = ["chat:write"]
    if settings.operators:
        posting += ["im:write", "im:history"]
    reactions = any((settings.reaction_picked_up, settings.reaction_answered, settings.reaction_escalated))
    if settings.dry_run:
        now = posting if settings.dry_run_preview else []
        if reactions and settings.reactions_in_dry_run:
            now = [*now, "reactions:write"]
        later = [s for s in [*posting, *(["reactions:write"] if reactions else [])] if s not in now]
        return reading + now, later
    return reading + posting + (["reactions:write"] if reactions else []), []


def check_scopes(client: WebClient, settings: Settings) -> dict[str, Any]:
    """Ask Slack who the bot is and fail the run (no retries) if its token lacks a scope it needs.

    Returns ``auth.test``'s answer (the bot's user and bot ids, to recognise its own posts).
    """
    from airflow.sdk.exceptions import AirflowFailException

    from credit_bot import slack

    identity, granted = slack.granted_scopes(client)
    if granted is None:
        log.warning("Slack sent no X-OAuth-Scopes header: the bot token's scopes cannot be checked")
        return identity
    required, for_live = needed_scopes(settings)
    missing = slack.missing_scopes(granted, required)
    if missing:
        raise AirflowFailException(f"MissingScopes: {slack.scope_failure(missing)}")
    later = slack.missing_scopes(granted, for_live)
    if later:
        log.warning("dry run: going live will fail at once, because %s", slack.scope_failure(later))
    return identity


@contextmanager
def _slack_setup_errors(channel: str) -> Iterator[None]:
    """Turn Slack's answers that mean "fix the setup" into one clear message, without task retries."""
    from airflow.sdk.exceptions import AirflowFailException
    from slack_sdk.errors import SlackApiError

    try:
        yield
    except SlackApiError as exc:
        error = exc.response.get("error")
        fix = _SETUP_ERRORS.get(error)
        if fix is None:
            raise
        raise AirflowFailException(f"Slack answered {error!r} for channel {channel}: {fix}") from None


_SETUP_ERRORS = {
    "channel_not_found": "the 'channel' setting or param is not a channel this bot can see (check the ID)",
    "not_in_channel": "invite the bot to the channel (/invite @CreditBot)",
    "invalid_auth": "the token in connection 'slack_api_default' is not valid",
    "not_authed": "connection 'slack_api_default' has no token (password field)",
    "token_revoked": "the token in connection 'slack_api_default' was revoked: install the app again",
    "missing_scope": "the Slack app lacks a scope: see README, 'Run it for real'",
}


def _recover_open(
    client: WebClient, book: dict[str, Any], settings: Settings, oldest: str, messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Bring back open requests the history read did not return, so none is stranded.

    Open requests older than the read window (after an outage longer than the lookback) are
    fetched one by one and appended to ``messages``; open requests whose message is gone were
    deleted by their author and are closed. Returns those closing outcomes.
    """
    from credit_bot import slack

    state = ledger.channel_state(book, settings.channel, settings.dry_run)
    seen = {m["ts"] for m in messages}
    missing = sorted(
        (ts for ts, e in state["requests"].items() if e.get("outcome") in ledger.OPEN and ts not in seen),
        key=float,
    )
    closed = []
    for ts in missing[: settings.max_requests_per_run]:
        found = slack.message(client, settings.channel, ts) if float(ts) <= float(oldest) else None
        if found is not None:
            messages.append(found)
            continue
        log.info("%s: the message was deleted; closing its request", ts)
        closed.append(
            {
                "ts": ts,
                "outcome": ledger.DELETED,
                "dry_run": settings.dry_run,
                "last_error": "message deleted",
            }
        )
    return closed


# ── resolve ────────────────────────────────────────────────────────────────────────────────────
def resolve(request: dict[str, Any], run: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Looker links → SQL → product → notebook jobs, for one request.

    Each job, and each entry of ``queries`` (every query a link gave, also those not run), carries
    ``query``: which query ran (``kind``, ``id`` or ``slug``, ``filters`` with the ``source`` of each
    value: url, default or saved) and its one-line ``text``; a job has that line as ``query_text`` too.
    """
    from credit_bot.links import UnsupportedLookerLink, looker_urls, parse_looker_url, stated_spends
    from credit_bot.looker import LookerError, LookerHook
    from credit_bot.notebooks import output_path
    from credit_bot.products import match_product

    settings = _settings(run)
    label = intake.Request(**request).label
    SlackSide(settings).react(request, settings.reaction_picked_up)
    urls = looker_urls(request["text"], list(settings.looker_hosts))
    stated = stated_spends(request["text"], list(settings.looker_hosts))  # checked in post_results
    if not urls:
        log.info("no Looker link on %s in the message", ", ".join(settings.looker_hosts))
    hook = LookerHook()
    jobs: list[dict[str, Any]] = []
    problems: list[str] = []
    ignored: list[str] = []
    described: list[dict[str, Any]] = []
    for url in urls:
        try:
            queries = hook.resolve(parse_looker_url(url))
        except UnsupportedLookerLink as exc:
            problems.append(str(exc))
            continue
        except LookerError as exc:
            if exc.transient:
                raise
            problems.append(str(exc))
            continue
        to_run = []
        for query in queries:
            if not query.sql.strip():
                problems.append(f"Looker returned no SQL for query {query.query_id} of {url}")
                continue
            rule = match_product(query.sql, settings.products)
            runs = rule is not None and rule.notebook is not None
            described.append({"link": url, "product": rule.name if runs else None, **query.describe()})
            log.info("%s → %s → %s", url, query.text, rule.name if rule else "no product rule")
            if not runs:
                ignored.append(f"{url} ({query.title}: {rule.name if rule else 'no product rule'})")
                continue
            to_run.append((query, rule))
        if len(to_run) > 1:
            problems.append(_several_tiles(url, [query for query, _ in to_run]))
            continue
        for query, rule in to_run:
            jobs.append(
                {
                    "link": url,
                    "product": rule.name,
                    "query_id": query.query_id,
                    "query": query.describe(),
                    "query_text": query.text,
                    "input_nb": settings.notebook_path(rule),
                    "output_nb": output_path(
                        settings.output_dir, run_id, request["channel"], request["ts"], len(jobs)
                    ),
                    "sql": query.sql,
                    "stated_spend": stated.get(url),
                }
            )
    if len({job["product"] for job in jobs}) > 1:
        problems.append(_several_products(jobs))
    for item in ignored:
        log.info("ignored: %s", item)
    status = "no_link" if not urls else "failed" if problems else "ready" if jobs else "ignored"
    return {
        "ts": request["ts"],
        "label": label,
        "notebook": {
            "kernel_name": settings.kernel_name,
            "warehouse_conn_id": settings.warehouse_conn_id,
            "timeout_seconds": settings.notebook_timeout_seconds,
        },
        "status": status,
        "links": urls,
        "jobs": jobs,
        "problems": problems,
        "ignored": ignored,
        "queries": described,
    }


def _several_tiles(url: str, queries: list[Any]) -> str:
    """The escalation for one link whose tiles would each go to a notebook: summing them would
    count the same fraud spend twice (by country and by day), so a person picks one. Tile names
    first, the dashboard's filter values last: the operators' DM shows the first 500 characters."""
    tiles = ", ".join(f"{query.title} (query {query.query_id})" for query in queries)
    chosen = {
        f"{f.field} = {f.value} [{f.source}]" for q in queries for f in q.filters if f.source != "saved"
    }
    filters = f" Dashboard filters: {'; '.join(sorted(chosen))}." if chosen else ""
    return (
        f"{len(queries)} tiles of {url} go to a notebook: {tiles}. Nothing was computed (their credits "
        "would be summed: a double credit). Which Look or tile holds the fraud spend? Ask the requester "
        f"for its link, then trigger credit_bot with this message's permalink and force=true.{filters}"
    )


def _several_products(jobs: list[dict[str, Any]]) -> str:
    """The escalation for a post whose links go to different products' notebooks."""
    by_product: dict[str, list[str]] = {}
    for job in jobs:
        by_product.setdefault(job["product"], []).append(job["link"])
    parts = "; ".join(f"{product}: {', '.join(links)}" for product, links in sorted(by_product.items()))
    return (
        f"the links go to {len(by_product)} products' notebooks ({parts}); credits of different "
        "products are not summed into one reply: ask for one request per product"
    )


# ── run_notebook ───────────────────────────────────────────────────────────────────────────────
def notebook_task(resolved: dict[str, Any]) -> dict[str, Any]:
    """``CreditNotebookOperator`` kwargs for one resolved request: its Verify queries' notebooks.

    Airflow calls this inside each ``run_notebook`` task (``resolve``'s output ``.map()``-ed), so
    no task of its own stands between resolve and the notebooks. A request that did not resolve
    cleanly gets no jobs, and its ``run_notebook`` skips.
    """
    jobs = resolved["jobs"] if resolved["status"] == "ready" else []
    return {
        "jobs": [
            {"input_nb": j["input_nb"], "output_nb": j["output_nb"], "parameters": {"looker": j["sql"]}}
            for j in jobs
        ],
        **resolved["notebook"],
        # The UI names the task instance after its request and the products it runs.
        "request_label": " · ".join([resolved["label"], *sorted({j["product"] for j in jobs})]),
    }


# ── post_results ───────────────────────────────────────────────────────────────────────────────
def decide(resolved: dict[str, Any] | None) -> dict[str, Any]:
    """What should happen to a request, given what resolve and the notebooks produced.

    Returns ``{"action": "answer"|"ask_link"|"ignore"|"escalate"|"retry", ...}``; no side effects.
    ``queries`` names, per link, the query whose SQL went (or would have gone) to a notebook.
    """
    decision = _decide(resolved)
    if resolved and resolved.get("queries") and decision["action"] in ("answer", "escalate", "retry"):
        decision["queries"] = [q["text"] for q in resolved["queries"] if q.get("text")]
    return decision


def _decide(resolved: dict[str, Any] | None) -> dict[str, Any]:
    from credit_bot.money import InvalidAmount
    from credit_bot.notebooks import NotebookResultError, read_result, validate_credit

    if resolved is None:
        return {"action": "retry", "error": "resolving the Looker links failed (Looker unavailable?)"}
    status = resolved["status"]
    if status == "no_link":
        return {"action": "ask_link"}
    if status == "ignored":
        return {"action": "ignore", "reason": "; ".join(resolved["ignored"]) or "not a handled product"}
    if status == "failed":
        return {"action": "escalate", "error": "; ".join(resolved["problems"]), "links": resolved["links"]}
    total = Decimal("0.00")
    by_link: dict[str, Decimal] = {}
    parts: list[str] = []
    notebooks = [job["output_nb"] for job in resolved["jobs"]]
    for job in resolved["jobs"]:
        try:
            result = read_result(job["output_nb"])
            validate_credit(result)
        except (NotebookResultError, InvalidAmount) as exc:
            # A notebook that did not finish may next time; an invalid amount, a missing one or a
            # rejected notebook will not.
            transient = isinstance(exc, NotebookResultError) and exc.transient
            return {
                "action": "retry" if transient else "escalate",
                "error": f"notebook for {job['link']}: {exc}",
                "links": resolved["links"],
                "notebooks": notebooks,
            }
        # Unrounded: the team's notebook leaves fractions of a cent, and the sum is rounded once.
        total += result.credit
        by_link[job["link"]] = by_link.get(job["link"], Decimal("0")) + result.credit
        if result.parts:
            parts.append(result.parts.describe())
    problem = _above_stated_spend(resolved["jobs"], {link: to_cents(c) for link, c in by_link.items()})
    if not problem and to_cents(total) <= 0:
        problem = (
            f"the credits sum to {format_usd(total)}: a credit of $0.00 is never posted, a person decides it"
        )
    if parts:
        problem = problem and f"{problem} (the notebook's parts: {'; '.join(parts)})"
    if problem:
        return {"action": "escalate", "error": problem, "links": resolved["links"], "notebooks": notebooks}
    answer = {
        "action": "answer",
        "amount": to_cents(total),
        "links": resolved["links"],
        "notebooks": notebooks,
    }
    return {**answer, "amount_parts": "; ".join(parts)} if parts else answer


def _above_stated_spend(jobs: list[dict[str, Any]], by_link: dict[str, Decimal]) -> str | None:
    """A credit above the fraud spend the request states for its link (label or line), or None.

    By the team's method a credit never exceeds the fraud spend behind its link; the request's
    own figure is a check that does not come from the notebook.
    """
    for job in jobs:
        stated = job.get("stated_spend")
        if stated and by_link[job["link"]] > Decimal(stated["amount"]):
            return (
                f"the credit {format_usd(by_link[job['link']])} the notebook computed for {job['link']} is "
                f"above the fraud spend {format_usd(Decimal(stated['amount']))} stated in the request "
                f"({stated['where']}); not posted"
            )
    return None


def post_results(
    request: dict[str, Any],
    run: dict[str, Any],
    resolved: dict[str, Any] | None,
    log_url: str | None,
    task: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Carry out the decision for one request (or log it in dry-run) and return its ledger outcome.

    The outcome's ``status`` is a few words for the task's name in the Airflow UI; ``markers`` are
    the posting markers record_ledger drops once the outcome is recorded. ``task`` (``run_id``,
    ``map_index``) says which task instance decided, for the requests page's log link.
    """
    settings = _settings(run)
    decision = decide(resolved)
    if decision["action"] == "retry" and request["attempt"] >= settings.max_attempts:
        decision = {
            **decision,
            "action": "escalate",
            "error": f"gave up after {request['attempt']} attempts: {decision['error']}",
        }
    slack = SlackSide(settings)
    # An earlier run may have replied or escalated and then lost its ledger write (a refused
    # write, a killed scheduler): what Slack was told stands.
    if decision["action"] != "answer" and (answered := slack.answered_earlier(request)) is not None:
        log.warning("answered by an earlier run whose ledger write was lost (%s); stays answered", answered)
        decision = {"action": "answered_earlier", **answered, "links": decision.get("links", [])}
    elif (earlier := slack.escalated_earlier(request)) is not None:
        log.warning("escalated by an earlier run whose ledger write was lost; stays escalated: %s", earlier)
        decision = {"action": "escalated_earlier", "error": earlier}
    outcome = _carry_out(request, settings, decision, slack, log_url)
    # What the requests page shows besides the outcome: the post's first words and what ran.
    seen = {
        "snippet": intake.snippet(request.get("text") or "", 60),
        "notebooks": decision.get("notebooks") or [],
        **{k: v for k, v in (task or {}).items() if k in ("run_id", "map_index")},
    }
    if slack.undelivered:  # the run ends failed once the ledger has this outcome (report_failures)
        outcome["undelivered"] = slack.undelivered
    # Every marker of the request goes once the ledger has its outcome, also those an earlier run
    # left (a link request before the link came, a reply whose ledger write was lost). A dry run
    # sets none.
    markers = [] if settings.dry_run else _request_markers(request["channel"], request["ts"])
    return {**outcome, **seen, "markers": markers}


def _request_markers(channel: str, ts: str) -> list[str]:
    """The posting markers one request can have: its reply, its link request, its escalation."""
    kinds = (replies.REPLY_EVENT_TYPE, replies.LINK_REQUEST_EVENT_TYPE, replies.ESCALATION_EVENT_TYPE)
    return [ledger.post_marker(channel, ts, kind) for kind in kinds]


def _carry_out(
    request: dict[str, Any],
    settings: Settings,
    decision: dict[str, Any],
    slack: SlackSide,
    log_url: str | None,
) -> dict[str, Any]:
    """Reply, ask for a link, DM the operators, or stay silent, as ``decision`` says."""
    outcome: dict[str, Any] = {
        "ts": request["ts"],
        "dry_run": settings.dry_run,
        "attempts": request["attempt"],
        "forced": request.get("forced", False),
        "links": decision.get("links", []),
        "requester": request.get("user", ""),  # the form's named person for a workflow post
    }
    if decision.get("queries"):  # which query each link gave: id or slug, filters and their source
        outcome["queries"] = decision["queries"]
    action = decision["action"]
    if action == "ignore":
        log.info("ignored silently: %s", decision["reason"])
        return {**outcome, "outcome": ledger.IGNORED, "last_error": None, "status": "ignored"}
    if action == "retry":
        attempt = f"attempt {request['attempt']} of {settings.max_attempts}"
        log.warning("will retry at the next run (%s): %s", attempt, decision["error"])
        next_step = (
            f"CreditBot tries again at the next run ({attempt}), or at once if you clear the failed "
            "task in Airflow; you will hear again only if it gives up"
        )
        slack.tell_operators(request, decision, log_url, state=ledger.RETRYING, next_step=next_step)
        return {
            **outcome,
            "outcome": ledger.RETRYING,
            "last_error": decision["error"],
            "status": f"retrying ({attempt})",
        }
    if action == "answer":
        if settings.needs_approval(decision["amount"]):  # posted by a credit_bot_approval run, if approved
            from credit_bot import approval

            return approval.hand_over(request, settings, decision, outcome, slack._permalink(request))
        text = replies.approval(decision["amount"], settings.category)
        reply_ts = slack.reply(
            request,
            text,
            replies.REPLY_EVENT_TYPE,
            {"request_ts": request["ts"], "amount": str(decision["amount"])},
        )
        slack.react(request, settings.reaction_answered)
        if decision.get("amount_parts"):  # what the notebook's concatenated credit_amount was made of
            outcome["amount_parts"] = decision["amount_parts"]
        return {
            **outcome,
            "outcome": ledger.ANSWERED,
            "amount": str(decision["amount"]),
            "reply_ts": reply_ts,
            "last_error": None,
            "status": f"answered {format_usd(decision['amount'])}",
        }
    if action == "ask_link":
        text = replies.link_request(list(settings.looker_hosts))
        reply_ts = slack.reply(request, text, replies.LINK_REQUEST_EVENT_TYPE, {"request_ts": request["ts"]})
        return {
            **outcome,
            "outcome": ledger.LINK_REQUESTED,
            "reply_ts": reply_ts or request["ts"],
            "last_error": None,
            "status": "asked for a link",
        }
    if action == "answered_earlier":  # the requester has the answer: nothing more to say
        slack.react(request, settings.reaction_answered)
        amount = decision["amount"]
        return {
            **outcome,
            "outcome": ledger.ANSWERED,
            "amount": amount,
            "reply_ts": decision["reply_ts"],
            "last_error": None,
            "status": f"answered {format_usd(Decimal(amount))}" if amount else "answered",
        }
    if action == "escalated_earlier":  # the operators were told already: nothing more to say
        error = decision["error"]
        return {**outcome, "outcome": ledger.ESCALATED, "last_error": error, "status": "escalated"}
    log.error("escalating to the operator(s): %s", decision["error"])
    next_step = (
        "CreditBot leaves this request alone: fix the cause, then trigger credit_bot with this "
        "message's permalink as message_ts and force=true"
    )
    slack.tell_operators(request, decision, log_url, state=ledger.ESCALATED, next_step=next_step)
    slack.mark_escalated(request, decision["error"])
    slack.react(request, settings.reaction_escalated)
    return {**outcome, "outcome": ledger.ESCALATED, "last_error": decision["error"], "status": "escalated"}


# ── record_ledger ──────────────────────────────────────────────────────────────────────────────
def record_ledger(
    run: dict[str, Any],
    requests: list[dict[str, Any]] | None,
    window: dict[str, Any] | None,
    outcomes: list[dict[str, Any] | None],
) -> dict[str, Any]:
    """Merge every request's outcome into the ledger Variable (the one writer of it)."""
    from airflow.sdk import Variable

    if requests is None or window is None:
        raise RuntimeError(
            "fetch_requests did not finish; nothing to record (the next run reads the same messages)"
        )
    settings = _settings(run)
    by_ts = {o["ts"]: o for o in outcomes if o}
    merged = list(window["expired"])
    for request in requests:
        merged.append(by_ts.get(request["ts"]) or _unfinished(request, settings))
    book = ledger.loads(Variable.get(ledger.LEDGER_VARIABLE, default=None))
    from credit_bot import approval

    # Decisions the credit_bot_approval runs wrote since: merged here, the ledger's one writer.
    decided = approval.decided_outcomes(book, settings, merged)
    merged += decided
    ledger.record(
        book,
        channel=settings.channel,
        dry_run=settings.dry_run,
        outcomes=merged,
        newest_ts=window["newest_ts"],
        retention_days=settings.ledger_retention_days,
    )
    Variable.set(ledger.LEDGER_VARIABLE, ledger.dumps(book))
    # Only now are the posting markers redundant; a request without an outcome keeps its markers.
    # A request closed here without a task of its own (deleted, expired) may have left some behind
    # in an earlier run whose post_results failed.
    done = {m for o in [*by_ts.values(), *decided] for m in o.get("markers", [])}
    for closed in window["expired"]:
        done |= set(_request_markers(settings.channel, closed["ts"]))
    for marker in done:
        Variable.delete(marker)
    removed = remove_old_notebooks(settings)
    counts: dict[str, int] = {}
    for outcome in merged:
        counts[outcome["outcome"]] = counts.get(outcome["outcome"], 0) + 1
    log.info("ledger updated: %s", counts or "nothing new")
    undelivered = {o["ts"]: o["undelivered"] for o in merged if o.get("undelivered")}
    return {
        "counts": counts,
        "summary": run_summary(merged, settings.dry_run) + approval.note(merged),
        "undelivered": undelivered,
        "approvals": approval.to_trigger(merged),
        "notebooks_removed": removed,
    }


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


def run_summary(outcomes: list[dict[str, Any]], dry_run: bool) -> str:
    """One line for the DAG run's note: ``3 requests: 2 answered ($1,204.10 total), 1 escalated``."""
    if not outcomes:
        return "Nothing new" + (" (dry run)" if dry_run else "")
    order = [ledger.ANSWERED, ledger.LINK_REQUESTED, ledger.ESCALATED, ledger.RETRYING, ledger.IGNORED]
    order += sorted({o["outcome"] for o in outcomes} - set(order))
    parts = []
    for name in order:
        done = [o for o in outcomes if o["outcome"] == name]
        if not done:
            continue
        part = f"{len(done)} {name.replace('_', ' ')}"
        if name == ledger.ANSWERED:
            total = sum((Decimal(o["amount"]) for o in done if o.get("amount")), Decimal("0"))
            part += f" ({format_usd(total)} total)"
        parts.append(part)
    noun = "request" if len(outcomes) == 1 else "requests"
    return f"{len(outcomes)} {noun}: " + ", ".join(parts) + (" — DRY RUN, nothing posted" if dry_run else "")


AIRFLOW_API_CONN_ID = "credit_bot_airflow_api"


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


def _unfinished(request: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The outcome of a request whose post_results task failed: retried next run, or escalated at last."""
    error = "post_results did not finish; see its task log"
    outcome = {"ts": request["ts"], "dry_run": settings.dry_run, "attempts": request["attempt"]}
    if request["attempt"] <= settings.max_attempts:
        return {**outcome, "outcome": ledger.RETRYING, "last_error": error}
    error = f"gave up after {request['attempt']} attempts: {error}"
    slack = SlackSide(settings)
    try:
        slack.tell_operators(
            request,
            {"error": error},
            None,
            state=ledger.ESCALATED,
            next_step="CreditBot leaves this request alone; re-run it with force=true once fixed",
        )
    except Exception as exc:  # the ledger must still be written; the failed DM is in this log
        log.exception("could not DM the operators about %s", request["ts"])
        slack.undelivered = f"the escalation DM failed ({type(exc).__name__})"
    closed = {**outcome, "outcome": ledger.ESCALATED, "last_error": error}
    return {**closed, "undelivered": slack.undelivered} if slack.undelivered else closed


# ── report_failures ────────────────────────────────────────────────────────────────────────────
# The per-request tasks: one of them failed (after its Airflow retries) = the run fails.
REQUEST_TASKS = ("resolve", "run_notebook", "post_results")
_FAILED_STATES = frozenset({"failed", "upstream_failed"})


def failed_request_tasks(task_states: dict[str, Any]) -> list[str]:
    """``["resolve[0]", "run_notebook[2]"]`` from a run's ``{task_id or task_id_mapindex: state}``."""
    return [task_id if index is None else f"{task_id}[{index}]" for task_id, index in _failed(task_states)]


def _failed(task_states: dict[str, Any]) -> list[tuple[str, int | None]]:
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


def untold_failures(failed: list[tuple[str, int | None]], outcomes: list[dict[str, Any]]) -> list[str]:
    """The failed request tasks no request DM told the operators about.

    A request's ``resolve`` or ``run_notebook`` failing is told when its ``post_results`` (same map
    index) finished with the request retrying or escalated and its DM delivered: that DM names the
    error. A failed ``post_results`` told nobody (it is the task that tells), nor did one whose
    request was answered or ignored despite a failed task.
    """
    told = {
        o["map_index"]
        for o in outcomes
        if o.get("outcome") in (ledger.RETRYING, ledger.ESCALATED) and not o.get("undelivered")
    }
    return [
        task_id if index is None else f"{task_id}[{index}]"
        for task_id, index in failed
        if task_id == "post_results" or index is None or index not in told
    ]


def report_failures(
    dag_id: str, run_id: str, recorded: dict[str, Any], outcomes: list[dict[str, Any]] | None = None
) -> None:
    """Fail the run (ledger already written) when a request's task failed or an operator DM failed.

    A run is never green over a request that failed or an escalation nobody received. Its failure
    alert (``alerts.on_task_failure``, this task's callback) quotes only what no request DM told:
    a DM that could not be delivered, a request task whose request the operators did not hear of.
    When the requests' DMs told it all, the run still fails, from :class:`alerts.AlreadyTold`, and
    nobody is alerted twice. ``outcomes`` are ``post_results``' return values (with ``map_index``).
    A task that failed and then succeeded on its retry counts as success.
    """
    from airflow.sdk.exceptions import AirflowFailException
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    from credit_bot.alerts import AlreadyTold

    states = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id]).get(run_id, {})
    failed = _failed(states)
    untold = untold_failures(failed, [o for o in outcomes or [] if o and "map_index" in o])
    undelivered = recorded.get("undelivered") or {}
    problems = [
        f"request {ts}: an operator DM could not be sent: {why}" for ts, why in sorted(undelivered.items())
    ]
    if untold:
        problems.append(f"{len(untold)} request task(s) failed: {', '.join(untold)} (see their logs)")
    after = (
        "The ledger has this run's outcomes; failed requests are tried again at the next run (up to "
        "max_attempts) and then escalated."
    )
    told = [task for task in failed_request_tasks(states) if task not in untold]
    if told:
        log.info("failed, and told to the operators by its request's DM: %s", ", ".join(told))
    if problems:
        raise AirflowFailException("; ".join(problems) + ". " + after)
    if told:
        message = (
            f"{len(told)} request task(s) failed: {', '.join(told)}; the operators were told by each "
            f"request's DM, so no run alert. {after}"
        )
        raise AirflowFailException(message) from AlreadyTold(message)
    log.info("every request task succeeded and every operator message was delivered")
