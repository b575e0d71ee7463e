"""post_results: carry out the decision for one request, and return its ledger outcome.

One small function per :class:`~credit_bot.model.Action` (:data:`ACTIONS`): reply (or, when the
``approval`` setting says so, hand the reply over to a ``credit_bot_approval`` run), ask for a link,
DM the operators, or stay silent. What is said in Slack goes through :class:`.slack_side.SlackSide`,
which never says the same thing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from credit_bot import intake, replies
from credit_bot.model import (
    Action,
    Decision,
    Outcome,
    RequestDict,
    RequestOutcome,
    Resolved,
    RunConfig,
    TaskRef,
)
from credit_bot.money import format_usd
from credit_bot.settings import Settings
from credit_bot.store import Store, post_marker
from credit_bot.tasks.decide import decide
from credit_bot.tasks.fetch import settings_of
from credit_bot.tasks.slack_side import SlackSide

log = logging.getLogger(__name__)


def post_results(
    request: RequestDict,
    run: RunConfig,
    resolved: Resolved | None,
    log_url: str | None,
    store: Store,
    task: TaskRef | None = None,
) -> RequestOutcome:
    """Carry out the decision for one request (or log it in dry-run) and return its ledger outcome.

    The outcome's ``status`` is a few words for the task's name in the Airflow UI; ``markers`` are
    the posting markers record_ledger drops once the outcome is recorded. ``task`` (``run_id``,
    ``map_index``) says which task instance decided, for the requests page's log link.
    """
    settings = settings_of(run)
    slack = SlackSide(settings, store)
    decision = _standing(request, _within_attempts(request, settings, decide(resolved)), slack)
    said = Said(request, settings, decision, slack, log_url)
    outcome: RequestOutcome = {
        "ts": request["ts"],
        "dry_run": settings.dry_run,
        "attempts": request["attempt"],
        "forced": request.get("forced", False),
        "links": decision.get("links", []),
        "requester": request.get("user", ""),  # the form's named person for a workflow post
    }
    if decision.get("queries"):  # which query each link gave: id or slug, filters and their source
        outcome["queries"] = decision["queries"]
    outcome.update(ACTIONS[decision["action"]](said))
    # What the requests page shows besides the outcome: the post's first words and what ran.
    outcome["snippet"] = intake.snippet(request.get("text") or "", 60)
    outcome["notebooks"] = decision.get("notebooks") or []
    if task:
        outcome["run_id"], outcome["map_index"] = task["run_id"], task["map_index"]
    if slack.undelivered:  # the run ends failed once the ledger has this outcome (report_failures)
        outcome["undelivered"] = slack.undelivered
    # Every marker of the request goes once the ledger has its outcome, also those an earlier run
    # left (a link request before the link came, a reply whose ledger write was lost). A dry run
    # sets none.
    outcome["markers"] = [] if settings.dry_run else request_markers(request["channel"], request["ts"])
    return outcome


def _within_attempts(request: RequestDict, settings: Settings, decision: Decision) -> Decision:
    """A retry at the last attempt is an escalation."""
    if decision["action"] != Action.RETRY or request["attempt"] < settings.max_attempts:
        return decision
    error = f"gave up after {request['attempt']} attempts: {decision.get('error')}"
    return {**decision, "action": Action.ESCALATE, "error": error}


def _standing(request: RequestDict, decision: Decision, slack: SlackSide) -> Decision:
    """What Slack was told stands: an earlier run may have replied or escalated and then lost its
    ledger write (a refused write, a killed scheduler)."""
    if decision["action"] != Action.ANSWER and (answered := slack.answered_earlier(request)) is not None:
        log.warning("answered by an earlier run whose ledger write was lost (%s); stays answered", answered)
        return {
            "action": Action.ANSWERED_EARLIER,
            "reply_ts": answered["reply_ts"],
            "earlier_amount": answered["amount"],
            "links": decision.get("links", []),
        }
    if (earlier := slack.escalated_earlier(request)) is not None:
        log.warning("escalated by an earlier run whose ledger write was lost; stays escalated: %s", earlier)
        return {"action": Action.ESCALATED_EARLIER, "error": earlier}
    return decision


def request_markers(channel: str, ts: str) -> list[str]:
    """The posting markers one request can have: its reply, its link request, its escalation."""
    kinds = (replies.REPLY_EVENT_TYPE, replies.LINK_REQUEST_EVENT_TYPE, replies.ESCALATION_EVENT_TYPE)
    return [post_marker(channel, ts, kind) for kind in kinds]


def own_resolved(resolved: Sequence[Resolved], map_index: int, ts: str) -> Resolved | None:
    """This request's resolve output among every resolve output of the run, or ``None`` if it failed.

    Airflow hands a mapped task's outputs to a task of another mapping as one sequence of those
    that exist, in map-index order: a resolve that failed leaves no entry, so this request's is at
    its own map index or, after such a failure, before it. Usually the first look finds it.
    """
    try:
        found = resolved[map_index]
    except IndexError:
        found = None
    if found is not None and found["ts"] == ts:
        return found
    for offset in range(min(map_index, len(resolved)) - 1, -1, -1):
        if resolved[offset]["ts"] == ts:
            return resolved[offset]
    return None


# ── one function per action ──────────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class Said:
    """What an action needs: the request, the settings, the decision, Slack, and the task's log."""

    request: RequestDict
    settings: Settings
    decision: Decision
    slack: SlackSide
    log_url: str | None

    @property
    def error(self) -> str:
        return self.decision.get("error", "")


def ignore(said: Said) -> RequestOutcome:
    log.info("ignored silently: %s", said.decision.get("reason"))
    return {"outcome": Outcome.IGNORED, "last_error": None, "status": "ignored"}


def retry(said: Said) -> RequestOutcome:
    attempt = f"attempt {said.request['attempt']} of {said.settings.max_attempts}"
    log.warning("will retry at the next run (%s): %s", attempt, said.error)
    next_step = (
        f"CreditBot tries again at the next run ({attempt}), or at once if you clear the failed "
        "task in Airflow; you will hear again only if it gives up"
    )
    said.slack.tell_operators(
        said.request, said.decision, said.log_url, state=Outcome.RETRYING, next_step=next_step
    )
    return {"outcome": Outcome.RETRYING, "last_error": said.error, "status": f"retrying ({attempt})"}


def answer(said: Said) -> RequestOutcome:
    amount = said.decision["amount"]
    request = said.request
    if said.settings.needs_approval(amount):  # posted by a credit_bot_approval run, if approved
        from credit_bot import approval  # imports the HITL operator: only when a reply needs it

        return approval.hand_over(request, said.settings, said.decision, said.slack.permalink(request))
    text = replies.approval(amount, said.settings.category)
    payload = {"request_ts": request["ts"], "amount": str(amount)}
    reply_ts = said.slack.reply(request, text, replies.REPLY_EVENT_TYPE, payload)
    said.slack.react(request, said.settings.reaction_answered)
    outcome: RequestOutcome = {
        "outcome": Outcome.ANSWERED,
        "amount": str(amount),
        "reply_ts": reply_ts,
        "last_error": None,
        "status": f"answered {format_usd(amount)}",
    }
    if said.decision.get("amount_parts"):  # what the notebook's concatenated credit_amount was made of
        outcome["amount_parts"] = said.decision["amount_parts"]
    return outcome


def ask_link(said: Said) -> RequestOutcome:
    request = said.request
    text = replies.link_request(list(said.settings.looker_hosts))
    reply_ts = said.slack.reply(request, text, replies.LINK_REQUEST_EVENT_TYPE, {"request_ts": request["ts"]})
    return {
        "outcome": Outcome.LINK_REQUESTED,
        "reply_ts": reply_ts or request["ts"],
        "last_error": None,
        "status": "asked for a link",
    }


def answered_earlier(said: Said) -> RequestOutcome:
    """The requester has the answer: nothing more to say."""
    said.slack.react(said.request, said.settings.reaction_answered)
    amount = said.decision.get("earlier_amount")
    return {
        "outcome": Outcome.ANSWERED,
        "amount": amount,
        "reply_ts": said.decision.get("reply_ts"),
        "last_error": None,
        "status": f"answered {format_usd(Decimal(amount))}" if amount else "answered",
    }


def escalated_earlier(said: Said) -> RequestOutcome:
    """The operators were told already: nothing more to say."""
    return {"outcome": Outcome.ESCALATED, "last_error": said.error, "status": "escalated"}


def escalate(said: Said) -> RequestOutcome:
    log.error("escalating to the operator(s): %s", said.error)
    next_step = (
        "CreditBot leaves this request alone: fix the cause, then trigger credit_bot with this "
        "message's permalink as message_ts and force=true"
    )
    said.slack.tell_operators(
        said.request, said.decision, said.log_url, state=Outcome.ESCALATED, next_step=next_step
    )
    said.slack.mark_escalated(said.request, said.error)
    said.slack.react(said.request, said.settings.reaction_escalated)
    return {"outcome": Outcome.ESCALATED, "last_error": said.error, "status": "escalated"}


ACTIONS: dict[Action, Callable[[Said], RequestOutcome]] = {
    Action.IGNORE: ignore,
    Action.RETRY: retry,
    Action.ANSWER: answer,
    Action.ASK_LINK: ask_link,
    Action.ANSWERED_EARLIER: answered_earlier,
    Action.ESCALATED_EARLIER: escalated_earlier,
    Action.ESCALATE: escalate,
}
