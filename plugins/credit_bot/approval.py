"""Approval before posting: a computed reply that needs a person's Approve waits in a run of its own.

The ``approval`` setting says which live replies wait ("all", or amounts above a dollar figure).
``post_results`` then posts nothing public: the request's outcome is ``awaiting_approval`` and the
main DAG triggers one ``credit_bot_approval`` run per such request (:func:`to_trigger`), so nothing
else waits for the decision. That run:

* ``ask`` — DMs each approver once: the request's permalink, the proposed reply, the notebook's
  parts, the executed notebook, and the Approve / Reject buttons (their ``value`` names the
  ``decide`` task: dag_id, run_id, task_id; ``credit_bot.interactions`` turns a click into a response);
* ``decide`` — :class:`CreditApprovalOperator`, Airflow's HITL operator: the same decision is made
  in the UI's Required actions, through the REST API, or by a button; it waits in the
  ``awaiting_input`` state (no worker, no triggerer) and in the metadata DB, so restarts lose nothing;
* ``remind`` — a reschedule-mode sensor: one reminder after ``approval_reminder_minutes`` unless
  ``decide`` has its answer (then it ends at its next poke);
* ``post`` — Approve: the reply in the thread, once (``SlackSide.reply``'s posting marker); Reject:
  nothing public; no decision within ``approval_timeout_hours``: the operators are told, once. Then
  the decision goes to the request's decision Variable (:func:`decision_variable`) and the
  approvers' DMs are updated in place (``chat.update``: who decided, when; buttons removed).

The ledger keeps one writer: the next ``credit_bot`` run's ``record_ledger`` merges the decision
(:func:`decided_outcomes`) and drops the Variable, like the posting markers. Variables are read and
written through :mod:`credit_bot.store` only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param

from credit_bot import replies
from credit_bot.errors import SetupError
from credit_bot.model import (
    ApprovalConf,
    ApprovalDecision,
    ApprovalRun,
    ApprovalState,
    Decision,
    Ledger,
    Outcome,
    RequestDict,
    RequestOutcome,
)
from credit_bot.money import format_usd
from credit_bot.store import Store, VariableStore, decision_key, post_marker

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from credit_bot.settings import Settings

log = logging.getLogger(__name__)

APPROVAL_DAG_ID = "credit_bot_approval"
DECIDE_TASK = "decide"
APPROVE, REJECT = "Approve", "Reject"
# Block Kit action ids of the buttons (credit_bot.interactions dispatches on them).
ACTION_APPROVE = "credit_bot_approve"
ACTION_REJECT = "credit_bot_reject"
# Message metadata of the approval DMs and their reminders: a retried task finds them, never resends.
APPROVAL_EVENT_TYPE = "credit_bot_approval"

# The ledger entry's "approval" state.
WAITING, APPROVED, REJECTED, TIMED_OUT = (
    ApprovalState.WAITING,
    ApprovalState.APPROVED,
    ApprovalState.REJECTED,
    ApprovalState.TIMED_OUT,
)
_DONE_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


# ── names ───────────────────────────────────────────────────────────────────────────────────────
def decision_variable(channel: str, ts: str) -> str:
    """The Variable a ``credit_bot_approval`` run writes its decision to; record_ledger drops it.

    Holds JSON ``{"state", "by", "via", "at", "reason", "reply_ts", "amount"}``
    (:class:`~credit_bot.model.ApprovalDecision`; :meth:`Store.approval_decision` reads it).
    """
    return decision_key(channel, ts)


def approval_run_id(channel: str, ts: str, attempt: int) -> str:
    """One approval run per request and attempt: a main run that redoes a request whose ledger write
    was lost triggers the same run id, which is then skipped, not asked twice."""
    return f"approval__{channel}__{ts}__{attempt}"


def required_actions_url(base_url: str | None, run_id: str) -> str | None:
    """The ``decide`` task's Required actions page in the Airflow UI."""
    from urllib.parse import quote

    if not base_url or not base_url.startswith(("http://", "https://")):
        return None
    return (
        f"{base_url.rstrip('/')}/dags/{APPROVAL_DAG_ID}/runs/{quote(run_id, safe='')}"
        f"/tasks/{DECIDE_TASK}/required_actions"
    )


# ── post_results: hand the reply over instead of posting it ────────────────────────────────────
def hand_over(
    request: RequestDict, settings: Settings, decision: Decision, permalink: str | None
) -> RequestOutcome:
    """The ``awaiting_approval`` outcome of a request whose reply needs an approver; posts nothing.

    What ``post_results``' answer action returns instead of replying (``tasks.post.answer``).
    ``approval_run`` is what the main DAG's ``request_approval`` task triggers (record_ledger keeps
    it out of the ledger).
    """
    amount: Decimal = decision["amount"]
    run_id = approval_run_id(request["channel"], request["ts"], request["attempt"])
    conf: ApprovalConf = {
        "channel": request["channel"],
        "ts": request["ts"],
        "attempt": request["attempt"],
        "label": f"{request.get('user') or '?'} @ {request['ts']}",
        "requester": request.get("user") or "",
        "reply": replies.approval(amount, settings.category),
        "amount": str(amount),
        "parts": decision.get("amount_parts") or "",
        "permalink": permalink or "",
        "links": decision.get("links") or [],
        "notebooks": decision.get("notebooks") or [],
        "approvers": list(settings.approval_users),
        "reminder_minutes": settings.approval_reminder_minutes,
        "timeout_hours": settings.approval_timeout_hours,
    }
    log.info("needs approval ('approval' is %r): asking %s", settings.approval, ", ".join(conf["approvers"]))
    result: RequestOutcome = {
        "outcome": Outcome.AWAITING_APPROVAL,
        "amount": str(amount),
        "last_error": None,
        "approval": {"state": WAITING, "run_id": run_id, "asked": _now()},
        "status": f"awaiting approval {format_usd(amount)}",
        "approval_run": {"trigger_run_id": run_id, "conf": conf},
    }
    if decision.get("amount_parts"):
        result["amount_parts"] = decision["amount_parts"]
    return result


def to_trigger(outcomes: list[RequestOutcome]) -> list[ApprovalRun]:
    """``TriggerDagRunOperator`` kwargs, one per request this run handed over (usually none)."""
    return [o["approval_run"] for o in outcomes if o and "approval_run" in o]


# ── record_ledger: the decisions the approval runs wrote ───────────────────────────────────────
def decided_outcomes(
    book: Ledger, settings: Settings, outcomes: list[RequestOutcome], store: Store
) -> list[RequestOutcome]:
    """Ledger outcomes for the waiting requests whose approval run has decided (live mode only).

    Waiting = ``awaiting_approval`` in the ledger, or in this run's ``outcomes``. Each outcome's
    ``markers`` name the Variables record_ledger drops once it is written: the decision and the
    request's posting markers.
    """
    if settings.dry_run:
        return []
    state = book.get("channels", {}).get(settings.channel, {}).get("live")
    requests = state["requests"] if state else {}
    waiting = {ts for ts, e in requests.items() if e.get("outcome") == Outcome.AWAITING_APPROVAL}
    waiting |= {o["ts"] for o in outcomes if o and o.get("outcome") == Outcome.AWAITING_APPROVAL}
    found = []
    for ts in sorted(waiting, key=float):
        decided = store.approval_decision(settings.channel, ts)
        if decided:
            found.append(outcome_of(settings.channel, ts, decided))
    return found


def outcome_of(channel: str, ts: str, decided: ApprovalDecision) -> RequestOutcome:
    """The ledger outcome a decision stands for: answered, rejected, or escalated (timed out)."""
    approval = {
        k: decided.get(k) for k in ("state", "by", "via", "at", "reason") if decided.get(k) is not None
    }
    kinds = (replies.REPLY_EVENT_TYPE, replies.LINK_REQUEST_EVENT_TYPE, replies.ESCALATION_EVENT_TYPE)
    markers = [decision_variable(channel, ts), *(post_marker(channel, ts, k) for k in kinds)]
    outcome: RequestOutcome = {
        "ts": ts,
        "dry_run": False,
        "approval": cast(Any, approval),
        "markers": markers,
    }
    state = decided.get("state")
    if state == APPROVED:
        return {
            **outcome,
            "outcome": Outcome.ANSWERED,
            "amount": decided.get("amount"),
            "reply_ts": decided.get("reply_ts"),
            "last_error": None,
        }
    if state == REJECTED:
        return {**outcome, "outcome": Outcome.REJECTED, "last_error": None}
    error = decided.get("error") or "no approver decided in time; nothing was posted"
    return {**outcome, "outcome": Outcome.ESCALATED, "last_error": error}


def note(outcomes: list[RequestOutcome]) -> str:
    """What the run note adds about approvals: ``; approvals: 1 waiting, 1 approved by U0…``."""
    parts = []
    waiting = sum(1 for o in outcomes if o.get("outcome") == Outcome.AWAITING_APPROVAL)
    if waiting:
        parts.append(f"{waiting} waiting")
    for o in outcomes:
        approval = o.get("approval") or {}
        if approval.get("state") in (APPROVED, REJECTED):
            parts.append(f"{approval['state']} by {approval.get('by') or '?'} ({o['ts']})")
        elif approval.get("state") == TIMED_OUT:
            parts.append(f"timed out ({o['ts']})")
    return f"; approvals: {', '.join(parts)}" if parts else ""


# ── the approval DM ─────────────────────────────────────────────────────────────────────────────
def approval_text(
    params: dict[str, Any], base_url: str | None, run_id: str, *, in_airflow: bool = False
) -> str:
    """The DM's text: what would be posted where, what it was computed from, where else to decide.

    ``in_airflow``: the text is the Required actions page's own body, so it does not link to itself.
    """
    where_asked = params.get("permalink") or f"channel {params['channel']}, ts {params['ts']}"
    lines = [
        f":ballot_box_with_check: CreditBot needs your approval before it replies to a credit request "
        f"({params.get('label')})",
        f"• Request: {where_asked}",
        f"• Proposed reply: {params['reply']}",
    ]
    if params.get("parts"):
        lines.append(f"• Per mode: {replies.defang(params['parts'], 500)}")
    for link in params.get("links") or []:
        lines.append(f"• Looker link: {link}")
    for path in params.get("notebooks") or []:
        lines.append(f"• Executed notebook: {replies.notebook_line(path, base_url)}")
    where = None if in_airflow else required_actions_url(base_url, run_id)
    lines.append(
        f"• Approve posts the reply in the thread; Reject posts nothing. No decision within "
        f"{params.get('timeout_hours')} h: the operators are told."
        + (f" Also in Airflow: {where}" if where else "")
    )
    return "\n".join(lines)


def button_value(dag_id: str, run_id: str, task_id: str = DECIDE_TASK) -> str:
    """The buttons' ``value``: which HITL task the click answers (Slack allows 2000 characters)."""
    return json.dumps({"dag_id": dag_id, "run_id": run_id, "task_id": task_id}, separators=(",", ":"))


def approval_blocks(text: str, value: str) -> list[dict[str, Any]]:
    """Block Kit: the text, then Approve (primary) and Reject (danger)."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
        {
            "type": "actions",
            "block_id": "credit_bot_approval",
            "elements": [
                {
                    "type": "button",
                    "action_id": ACTION_APPROVE,
                    "text": {"type": "plain_text", "text": APPROVE},
                    "style": "primary",
                    "value": value,
                },
                {
                    "type": "button",
                    "action_id": ACTION_REJECT,
                    "text": {"type": "plain_text", "text": REJECT},
                    "style": "danger",
                    "value": value,
                },
            ],
        },
    ]


def decided_line(decided: ApprovalDecision) -> str:
    """``Approved by <@U…> at 2026-05-01 10:02 UTC`` (what replaces the buttons)."""
    state = decided["state"]
    at = decided.get("at") or _now()
    when = at[:16].replace("T", " ") + " UTC"
    by = decided.get("by") or ""
    who = f"<@{by}>" if decided.get("via") == "slack" else f"{by} (in Airflow)"
    if state == APPROVED:
        return f":white_check_mark: Approved by {who} at {when}: the reply is posted"
    if state == REJECTED:
        why = f" ({replies.defang(decided['reason'], 300)})" if decided.get("reason") else ""
        return f":no_entry_sign: Rejected by {who} at {when}{why}: nothing was posted"
    return f":hourglass: Nobody decided in time ({when}): nothing was posted, the operators were told"


def decided_blocks(text: str, decided: ApprovalDecision) -> list[dict[str, Any]]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": decided_line(decided)}]},
    ]


# ── the credit_bot_approval tasks ───────────────────────────────────────────────────────────────
def current_settings(store: Store | None = None) -> Settings:
    """The settings Variable as it is now, live: an approval only ever exists for a live reply."""
    from credit_bot.settings import Settings

    return replace(Settings.from_json((store or VariableStore()).settings_text()), dry_run=False)


class _Slack:
    """A reading and a posting client (posting never resends blind) and the bot's user id."""

    def __init__(self) -> None:
        from credit_bot import slack

        self.reader: WebClient = slack.slack_hook().client
        self.poster: WebClient = slack.slack_hook(for_posting=True).client
        self.bot_user_id: str = str(self.reader.auth_test()["user_id"])


def ask(params: dict[str, Any], dag_id: str, run_id: str) -> list[dict[str, str]]:
    """DM each approver the approval message once; ``[{"user", "channel", "ts"}]`` of the DMs sent.

    An approver Slack cannot reach is logged and skipped; if none can be reached the task fails
    (the decision can still be made in Airflow: ``decide`` runs anyway).
    """
    from slack_sdk.errors import SlackApiError

    from credit_bot import slack
    from credit_bot.ui.urls import configured_base_url

    side = _Slack()
    text = approval_text(params, configured_base_url(), run_id)
    blocks = approval_blocks(text, button_value(dag_id, run_id))
    sent: list[dict[str, str]] = []
    failed: list[str] = []
    for user in params.get("approvers") or []:
        try:
            channel = side.reader.conversations_open(users=user)["channel"]["id"]
            payload = {"run_id": run_id, "kind": "ask"}
            earlier = _own(side, channel, payload, since_ts=params["ts"])
            if earlier is None:
                ts = str(
                    side.poster.chat_postMessage(
                        channel=channel,
                        text=text,
                        blocks=blocks,
                        unfurl_links=False,
                        unfurl_media=False,
                        metadata={"event_type": APPROVAL_EVENT_TYPE, "event_payload": payload},
                    )["ts"]
                )
            else:
                ts = str(earlier["ts"])
        except SlackApiError as exc:
            refused = slack.refusal(exc)
            if refused is None or not refused.recipient:  # only an approver Slack cannot reach is skipped
                raise
            error = slack.error_code(exc)
            log.error("cannot DM approver %s: Slack answered %r", user, error)
            failed.append(f"{user} ({error})")
            continue
        sent.append({"user": user, "channel": channel, "ts": ts})
    log.info("approval asked of %s", ", ".join(d["user"] for d in sent) or "nobody")
    if not sent:
        raise SetupError(
            f"no approver could be DMed ({', '.join(failed) or 'none configured'}); decide in Airflow's "
            f"Required actions, and fix the 'approvers' setting"
        )
    return sent


def _own(side: _Slack, channel: str, payload: dict[str, Any], since_ts: str) -> dict[str, Any] | None:
    from credit_bot import slack

    recent = side.reader.conversations_history(
        channel=channel, oldest=since_ts, limit=100, include_all_metadata=True
    )
    return slack.find_own(
        recent.get("messages", []), bot_user_id=side.bot_user_id, event_type=APPROVAL_EVENT_TYPE, **payload
    )


def remind_due(started: datetime, minutes: int, now: datetime | None = None) -> bool:
    return (now or datetime.now(UTC)) >= started + timedelta(minutes=minutes)


def remind(
    params: dict[str, Any], dms: list[dict[str, str]] | None, dag_id: str, run_id: str, started: datetime
) -> bool:
    """One poke of the ``remind`` sensor: True (done) once ``decide`` has its answer or the reminder went.

    The reminder is a reply under each approver's DM (sent once: its metadata is looked for first).
    """
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    state = (
        RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id]).get(run_id, {}).get(DECIDE_TASK)
    )
    if state in _DONE_STATES:
        log.info("decided (decide is %s): no reminder", state)
        return True
    if not remind_due(started, int(params.get("reminder_minutes") or 60)):
        return False
    from credit_bot import slack

    side = _Slack()
    payload = {"run_id": run_id, "kind": "reminder"}
    text = (
        f":bell: Reminder: a credit reply waits for your approval ({params.get('label')}): "
        f"{params['reply']}. No decision within {params.get('timeout_hours')} h of the request: the "
        "operators are told."
    )
    for dm in dms or []:
        thread = slack.replies(side.reader, dm["channel"], dm["ts"])
        if slack.find_own(thread, bot_user_id=side.bot_user_id, event_type=APPROVAL_EVENT_TYPE, **payload):
            continue
        side.poster.chat_postMessage(
            channel=dm["channel"],
            thread_ts=dm["ts"],
            text=text,
            metadata={"event_type": APPROVAL_EVENT_TYPE, "event_payload": payload},
        )
    log.info("reminded %s", ", ".join(d["user"] for d in dms or []) or "nobody (no DMs were sent)")
    return True


def decision_of(result: dict[str, Any] | None) -> ApprovalDecision:
    """``{"state", "by", "via", "at", "reason"}`` from ``decide``'s return value (None: no decision)."""
    if not result or result.get("timedout") or not result.get("chosen_options"):
        return {"state": TIMED_OUT, "at": _now()}
    chosen = result["chosen_options"][0]
    inputs = result.get("params_input") or {}
    responded_at = result.get("responded_at")
    at = responded_at.isoformat() if isinstance(responded_at, datetime) else str(responded_at or _now())
    slack_user = (inputs.get("slack_user") or "").strip()
    airflow_user = result.get("responded_by_user") or {}
    decided: ApprovalDecision = {
        "state": APPROVED if chosen == APPROVE else REJECTED,
        "by": slack_user or airflow_user.get("name") or airflow_user.get("id") or "?",
        "via": "slack" if slack_user else "airflow",
        "at": at[:19] if len(at) >= 19 else at,
    }
    if (inputs.get("reason") or "").strip():
        decided["reason"] = inputs["reason"].strip()[:500]
    return decided


def post(
    params: dict[str, Any],
    result: dict[str, Any] | None,
    dms: list[dict[str, str]] | None,
    store: Store | None = None,
) -> ApprovalDecision:
    """Carry out the decision; write it for the ledger; update the approvers' DMs. Returns the decision.

    Safe to retry: the reply goes through ``SlackSide.reply`` (posting marker, then the thread), and
    the timeout DM through ``tell_operators`` (the DM's metadata), so neither is ever sent twice.
    """
    from credit_bot.model import RequestReason
    from credit_bot.tasks.slack_side import SlackSide

    store = store or VariableStore()
    decided = decision_of(result)
    settings = current_settings(store)
    request: RequestDict = {
        "channel": params["channel"],
        "ts": params["ts"],
        "user": params.get("requester") or "",
        "text": "",
        "attempt": params.get("attempt") or 1,
        "reason": RequestReason.NEW,
        "forced": False,
    }
    side = SlackSide(settings, store)
    if decided["state"] == APPROVED:
        decided["reply_ts"] = side.reply(
            request,
            params["reply"],
            replies.REPLY_EVENT_TYPE,
            {"request_ts": params["ts"], "amount": params["amount"]},
        )
        decided["amount"] = params["amount"]
        side.react(request, settings.reaction_answered)
        log.info("approved by %s: replied %s", decided["by"], params["reply"])
    elif decided["state"] == REJECTED:
        log.info(
            "rejected by %s (%s): nothing posted", decided["by"], decided.get("reason") or "no reason given"
        )
    else:
        decided["error"] = (
            f"no approver decided within {params.get('timeout_hours')} h on the reply {params['reply']!r}; "
            "nothing was posted"
            if result
            else f"the decide task failed (see its log) on the reply {params['reply']!r}; nothing was posted"
        )
        side.tell_operators(
            request,
            {
                "error": decided["error"],
                "links": list(params.get("links") or []),
                "notebooks": list(params.get("notebooks") or []),
            },
            None,
            state="approval_timed_out",
            next_step="decide it yourself: post the reply, or trigger credit_bot with this message's "
            "permalink and force=true to compute and ask again",
        )
        side.react(request, settings.reaction_escalated)
        log.warning("%s", decided["error"])
    store.save_approval_decision(params["channel"], params["ts"], decided)
    _update_dms(params, dms, decided)
    return decided


def _update_dms(params: dict[str, Any], dms: list[dict[str, str]] | None, decided: ApprovalDecision) -> None:
    """Each approver's DM says who decided and when, without buttons; cosmetic, so never fails the task."""
    from slack_sdk.errors import SlackApiError

    from credit_bot import slack
    from credit_bot.ui.urls import configured_base_url

    if not dms:
        return
    poster = slack.slack_hook(for_posting=True).client
    text = approval_text(
        params,
        configured_base_url(),
        approval_run_id(params["channel"], params["ts"], params.get("attempt") or 1),
    )
    for dm in dms:
        try:
            poster.chat_update(
                channel=dm["channel"],
                ts=dm["ts"],
                text=f"{text}\n{decided_line(decided)}",
                blocks=decided_blocks(text, decided),
            )
        except SlackApiError as exc:
            log.warning("could not update the approval DM to %s: %s", dm["user"], exc.response.get("error"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ── decide: Airflow's HITL operator ─────────────────────────────────────────────────────────────
class CreditApprovalOperator(HITLOperator):
    """Approve / Reject for one reply, answered in Slack, Airflow's Required actions or the REST API.

    Airflow's :class:`HITLOperator` with CreditBot's two options and form (an optional ``reason``;
    ``slack_user``, filled in by ``credit_bot.interactions`` with who clicked). The subject, body and
    ``response_timeout`` come from the run's params (the settings of the run that asked), so one DAG
    serves every request. A timeout returns ``{"timedout": True}`` instead of failing: ``post`` then
    escalates, and the run stays green (nobody deciding is not the bot failing).
    """

    def __init__(self, *, params: Any = None, **kwargs: Any) -> None:
        from airflow.sdk.definitions.param import ParamsDict

        # The DAG's params arrive here too (source "dag"); HITLOperator keeps only the form's ("task").
        merged = params if isinstance(params, ParamsDict) else ParamsDict(params or {})
        merged = ParamsDict({key: merged.get_param(key) for key in merged})
        merged["reason"] = Param("", type=["null", "string"], title="Reason (optional)", source="task")
        merged["slack_user"] = Param(
            "",
            type=["null", "string"],
            title="Slack user",
            description="Filled in by CreditBot when the decision is a Slack button click; leave empty "
            "here (Airflow records you as the responder).",
            source="task",
        )
        super().__init__(
            subject="CreditBot: approve a credit reply?",
            options=[APPROVE, REJECT],
            multiple=False,
            params=merged,
            **kwargs,
        )

    def execute(self, context: Any) -> Any:
        from credit_bot.ui.urls import configured_base_url

        params = context["params"]
        self.response_timeout = timedelta(hours=float(params.get("timeout_hours") or 24))
        self.subject = f"Post {params['reply']!r} for {params.get('label')}?"
        # With the configured base URL, as in the DM: the executed notebook is a link to CreditBot's
        # notebook view (without it the body said "[api] base_url is not configured", wrongly).
        text = approval_text(params, configured_base_url(), context["run_id"], in_airflow=True)
        self.body = "\n\n".join(line.removeprefix("• ") for line in text.splitlines()[1:])
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        if event.get("error_type") == "timeout":
            self.log.warning("no decision within %s: post escalates", self.response_timeout)
            return {"chosen_options": [], "timedout": True}
        return super().execute_complete(context, event)
