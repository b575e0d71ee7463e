"""What ``post_results`` says in Slack for a request: replies, operator DMs and reactions, each once.

Every reply and DM carries message metadata naming its request; before posting, a posting marker
(:mod:`credit_bot.store`; after a crash, the thread itself) says whether it was already sent.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from credit_bot import replies
from credit_bot.alerts import ALERT_CHANNEL_ENV
from credit_bot.model import Decision, RequestDict, RequestReason, SlackMessage
from credit_bot.settings import Settings
from credit_bot.store import POSTING, Store, post_marker
from credit_bot.ui.urls import configured_base_url

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


def _marker(request: RequestDict, event_type: str) -> str:
    """The posting marker of one kind of message about ``request`` (record_ledger drops them all)."""
    return post_marker(request["channel"], request["ts"], event_type)


class EarlierReply(TypedDict):
    reply_ts: str
    amount: str | None  # from the reply's metadata; None when it has none


class SlackSide:
    """What post_results says in Slack: replies, operator DMs and status reactions, each at most once.

    Clients are made on first use: a reading one, and a posting one that never resends blind
    (see ``slack.slack_hook``). The bot's user id, to recognise its own earlier messages, is asked
    (``auth.test``) only when an earlier message must be looked for.
    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._bot_user_id: str | None = None
        self._clients: tuple[WebClient, WebClient] | None = None
        # Set when an operator DM could not be sent (even if the alert channel got it instead):
        # a setup problem someone must fix, so the run ends failed once the ledger is written.
        self.undelivered: str | None = None

    @property
    def reader(self) -> WebClient:
        return self._both()[0]

    @property
    def poster(self) -> WebClient:
        return self._both()[1]

    @property
    def bot_user_id(self) -> str:
        if self._bot_user_id is None:
            self._bot_user_id = str(self.reader.auth_test()["user_id"])
        return self._bot_user_id

    def _both(self) -> tuple[WebClient, WebClient]:
        from credit_bot import slack

        if self._clients is None:
            self._clients = (slack.slack_hook().client, slack.slack_hook(for_posting=True).client)
        return self._clients

    def reply(
        self, request: RequestDict, text: str, event_type: str, payload: Mapping[str, str]
    ) -> str | None:
        """Post ``text`` in the request's thread once: an earlier reply of the same kind is reused."""
        from credit_bot import slack

        if self.settings.dry_run:
            log.info("DRY RUN: would reply in thread %s of %s: %s", request["ts"], request["channel"], text)
            if self.settings.dry_run_preview:
                self._dm_operators(
                    request,
                    replies.dry_run_preview(text, self.permalink(request)),
                    state=f"preview:{event_type}",
                )
            return None
        marker = _marker(request, event_type)
        mark = self.store.marker(marker)
        posted = self.store.posted(mark)
        if posted is not None:
            log.info("already replied in this thread (%s); not posting again", mark)
            return posted
        if mark == POSTING or request.get("forced") or request.get("reason") == RequestReason.RETRY:
            # An earlier try may have posted and died before it could say so: look in the thread.
            earlier = self._own_in_thread(request, event_type)
            if earlier:
                log.info("already replied in this thread at %s; not posting again", earlier["ts"])
                self.store.mark_posted(marker, earlier["ts"])
                return str(earlier["ts"])
        self.store.mark_posting(marker)
        reply_ts = slack.post(
            self.poster,
            channel=request["channel"],
            thread_ts=request["ts"],
            text=text,
            event_type=event_type,
            payload=payload,
        )
        self.store.mark_posted(marker, reply_ts)
        log.info("replied in thread %s: %s", request["ts"], text)
        return reply_ts

    def answered_earlier(self, request: RequestDict) -> EarlierReply | None:
        """The reply an earlier run posted when its outcome never reached the ledger, else None.

        Its marker says ``posted:`` (or ``posting``: a try died mid-post); the thread says what
        the reply was. A request answered in Slack stays answered, whatever this run's Looker or
        notebook says: escalating it would tell the operators "could not answer" after the fact.
        Returns the reply's ``reply_ts`` and ``amount`` (from its metadata; None if it has none).
        """
        if self.settings.dry_run or request.get("forced"):
            return None
        if not self.store.marker(_marker(request, replies.REPLY_EVENT_TYPE)):
            return None
        earlier = self._own_in_thread(request, replies.REPLY_EVENT_TYPE)
        if earlier is None:  # a try died before its post landed (or someone removed the reply)
            return None
        amount = ((earlier.get("metadata") or {}).get("event_payload") or {}).get("amount")
        return {"reply_ts": str(earlier["ts"]), "amount": amount}

    def _own_in_thread(self, request: RequestDict, event_type: str) -> SlackMessage | None:
        """The bot's earlier message of ``event_type`` in the request's thread (one replies read)."""
        from credit_bot import slack

        return slack.find_own(
            slack.replies(self.reader, request["channel"], request["ts"]),
            bot_user_id=self.bot_user_id,
            event_type=event_type,
            request_ts=request["ts"],
        )

    def escalated_earlier(self, request: RequestDict) -> str | None:
        """The error an earlier run escalated this request with, when its ledger write was lost.

        The escalation DMs went out, but the run ended before its outcome reached the ledger (a
        refused write, a killed scheduler): the mark says so, and the request stays escalated
        instead of being answered behind the operators' backs by a later run.
        """
        if self.settings.dry_run or request.get("forced"):
            return None
        return self.store.posted(self.store.marker(_marker(request, replies.ESCALATION_EVENT_TYPE)))

    def mark_escalated(self, request: RequestDict, error: str) -> None:
        """Remember that the operators were told this request is escalated, until the ledger says so.

        Set after the DMs: a try that died before them is retried and still tells the operators.
        """
        if self.settings.dry_run:
            return
        self.store.mark_posted(_marker(request, replies.ESCALATION_EVENT_TYPE), error[:500])

    def tell_operators(
        self,
        request: RequestDict,
        decision: Decision,
        log_url: str | None,
        *,
        state: str,
        next_step: str,
    ) -> None:
        """DM every operator once per request and state (retrying, escalated); logged in dry-run."""
        if self.settings.dry_run:
            who = ", ".join(self.settings.operators) or "nobody (no operators configured)"
            log.info("DRY RUN: would DM %s (%s): %s", who, state, decision.get("error"))
            return
        text = replies.operator_dm(
            problem=decision.get("error", ""),
            permalink=self.permalink(request),
            channel=request["channel"],
            ts=request["ts"],
            log_url=log_url,
            next_step=next_step,
            links=decision.get("links"),
            queries=decision.get("queries"),
            notebooks=decision.get("notebooks"),
            requester=request.get("user"),
            base_url=configured_base_url(),
        )
        from credit_bot import interactions

        # With a Retry now button: the forced one-message run, from the DM (credit_bot.interactions).
        blocks = interactions.retry_blocks(text, request["channel"], request["ts"])
        self._dm_operators(request, text, state=state, blocks=blocks)

    def _dm_operators(
        self, request: RequestDict, text: str, *, state: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        """DM each operator; a DM Slack refuses for good goes to the fallback alert channel instead.

        Transient Slack failures still raise (the task is retried); what cannot be sent at all
        (deactivated operator, a bot's or a bad user id) is posted once to ``alert_channel``
        (or ``$CREDIT_BOT_ALERT_CHANNEL``). ``undelivered`` then says what happened, and the run
        ends failed after the ledger is written (``report_failures``), whether or not the
        channel got it: an operator nobody can DM is a setting to fix.
        """
        from slack_sdk.errors import SlackApiError

        from credit_bot import slack

        payload = {"channel": request["channel"], "request_ts": request["ts"], "state": state}
        failed: list[str] = []
        for operator in self.settings.operators:
            try:
                slack.direct_message(
                    self.reader,
                    self.poster,
                    operator,
                    text,
                    bot_user_id=self.bot_user_id,
                    event_type=replies.ESCALATION_EVENT_TYPE,
                    payload=payload,
                    since_ts=request["ts"],
                    blocks=blocks,
                )
            except SlackApiError as exc:
                error = _unreachable(exc)
                log.error("cannot DM operator %s: Slack answered %r", operator, error)
                failed.append(f"{operator} ({error})")
        if self.settings.operators and not failed:
            return
        if state.startswith("preview:"):
            return  # a dry-run preview is not worth an alert
        why = f"could not DM {', '.join(failed)}" if failed else "no 'operators' are configured"
        channel = self.alert_channel
        if not channel:
            self.undelivered = f"{why}, and no alert channel is set ('alert_channel' or ${ALERT_CHANNEL_ENV})"
            log.error("%s: this message reached nobody:\n%s", self.undelivered, text)
            return
        try:
            slack.post_once(
                self.reader,
                self.poster,
                channel,
                f":rotating_light: CreditBot {why}; posting here instead.\n{text}",
                bot_user_id=self.bot_user_id,
                event_type=replies.ESCALATION_EVENT_TYPE,
                payload=payload,
                since_ts=request["ts"],
            )
        except SlackApiError as exc:
            error = _unreachable(exc)
            self.undelivered = f"{why}, and alert channel {channel} refused the post ({error})"
            log.error("%s: this message reached nobody:\n%s", self.undelivered, text)
            return
        self.undelivered = f"{why}; posted to alert channel {channel} instead"
        log.warning("%s", self.undelivered)

    @property
    def alert_channel(self) -> str:
        """Where an operator message goes when no DM can be sent: the setting, else the env var."""
        return self.settings.alert_channel or os.environ.get(ALERT_CHANNEL_ENV, "").strip()

    def permalink(self, request: RequestDict) -> str | None:
        from credit_bot import slack

        return slack.permalink(self.reader, request["channel"], request["ts"])

    def react(self, request: RequestDict, name: str) -> None:
        """A status reaction on the request post (live, or in dry-run when asked); never fails the task."""
        from credit_bot import slack

        if name and (not self.settings.dry_run or self.settings.reactions_in_dry_run):
            slack.react(self.reader, request["channel"], request["ts"], name)


def _unreachable(exc: SlackApiError) -> str:
    """Slack's error code when it says the recipient cannot be reached (deactivated, a bot, no such
    user or channel); any other error is raised again, for Airflow's retry."""
    from credit_bot import slack

    found = slack.refusal(exc)
    if found is None or not found.recipient:
        raise exc
    return slack.error_code(exc)
