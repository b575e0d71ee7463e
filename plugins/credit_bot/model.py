"""The data that moves between CreditBot's tasks and into its ledger, declared once.

XCom and the ledger stay plain JSON: these types say what that JSON is, they do not wrap it. The
string enums are ``str`` subclasses, so they compare equal to (and serialise as) the strings that
earlier runs wrote; a ledger written before them reads the same.

What travels, in DAG order::

    fetch_requests → Request (one per message), RunConfig (key "run"), Window (key "window")
    resolve        → Resolved (jobs, queries, problems)
    run_notebook   ← NotebookTask (built from Resolved by ``tasks.resolve.notebook_task``)
    post_results   → RequestOutcome (a LedgerEntry plus the run-only fields)
    record_ledger  → Recorded (counts, the run's summary, undelivered DMs, approval runs to trigger)

Shapes that belong to someone else (a Slack message, an Events API event) are named here as what
they are, ``dict[str, Any]`` under their own name: Slack defines them and adds fields at will.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Any, NotRequired, TypeAlias, TypedDict

# A message object as the Slack Web API or Events API returns it (docs.slack.dev, "message").
SlackMessage: TypeAlias = dict[str, Any]
# An Events API event, an asset event's payload: Slack's or the triggerer's JSON.
SlackEvent: TypeAlias = dict[str, Any]


class Outcome(StrEnum):
    """What became of a request: the ``outcome`` of its ledger entry."""

    ANSWERED = "answered"
    LINK_REQUESTED = "link_requested"
    IGNORED = "ignored"
    ESCALATED = "escalated"
    RETRYING = "retrying"
    EXPIRED = "expired"  # no Looker link came within link_wait_hours
    DELETED = "deleted"  # the message was deleted before it was answered
    # A computed reply waiting for an approver (credit_bot.approval); its credit_bot_approval run
    # decides, and the next record_ledger merges the decision: answered, rejected, or escalated.
    AWAITING_APPROVAL = "awaiting_approval"
    REJECTED = "rejected"


# Done with: never worked on again unless forced. Open: a later run looks at it again.
FINAL = frozenset(
    {
        Outcome.ANSWERED,
        Outcome.IGNORED,
        Outcome.ESCALATED,
        Outcome.EXPIRED,
        Outcome.DELETED,
        Outcome.REJECTED,
    }
)
OPEN = frozenset({Outcome.LINK_REQUESTED, Outcome.RETRYING})


class Action(StrEnum):
    """What post_results does for a request (``tasks.post.ACTIONS`` holds one function per action)."""

    ANSWER = "answer"
    ASK_LINK = "ask_link"
    IGNORE = "ignore"
    ESCALATE = "escalate"
    RETRY = "retry"
    # An earlier run replied or escalated and then lost its ledger write: what Slack was told stands.
    ANSWERED_EARLIER = "answered_earlier"
    ESCALATED_EARLIER = "escalated_earlier"


class RequestReason(StrEnum):
    """Why a message is worked on in this run."""

    NEW = "new"
    RETRY = "retry"
    LINK_ADDED = "link_added"
    MANUAL = "manual"
    CHECK_THREAD = "check_thread"  # waiting for a link; its thread must be read (fetch_requests does)


class ResolveStatus(StrEnum):
    """What resolve made of a request's links."""

    NO_LINK = "no_link"
    FAILED = "failed"  # a link gave no usable query: escalated
    READY = "ready"  # notebook jobs to run
    IGNORED = "ignored"  # every query belongs to a product without a notebook


class LinkKind(StrEnum):
    """What a Looker URL points at."""

    LOOK = "look"
    EXPLORE = "explore"  # an explore with a saved query (qid=…)
    EXPLORE_URL = "explore_url"  # an expanded explore: the whole query is in the URL
    SHORT = "short"
    DASHBOARD = "dashboard"
    SQL_RUNNER = "sql_runner"


# ── fetch_requests ──────────────────────────────────────────────────────────────────────────────
class ProductRuleDict(TypedDict):
    name: str
    pattern: str
    notebook: str | None


class SettingsDict(TypedDict):
    """``Settings.to_dict()``: every setting, as JSON (README lists what each means)."""

    channel: str
    dry_run: bool
    operators: Sequence[str]
    looker_hosts: Sequence[str]
    category: str
    products: Sequence[ProductRuleDict]
    notebooks_dir: str
    output_dir: str
    kernel_name: str
    notebook_timeout_seconds: int
    warehouse_conn_id: str
    lookback_hours: int
    link_wait_hours: int
    max_attempts: int
    page_size: int
    max_requests_per_run: int
    ledger_retention_days: int
    notebook_retention_days: int
    reaction_picked_up: str
    reaction_answered: str
    reaction_escalated: str
    reactions_in_dry_run: bool
    dry_run_preview: bool
    request_bots: Sequence[str]
    alert_channel: str
    approval: str
    approvers: Sequence[str]
    approval_reminder_minutes: int
    approval_timeout_hours: int


class RunConfig(SettingsDict):
    """fetch_requests' XCom ``run``: the settings with this run's params applied (channel, dry_run)."""

    message_ts: str | None
    force: bool


class RequestDict(TypedDict):
    """One message to work on (``intake.Request.as_dict()``): fetch_requests' return value, per item."""

    channel: str
    ts: str
    user: str
    text: str
    attempt: int
    reason: RequestReason
    forced: bool


class TriggerPayload(TypedDict):
    """What the Socket Mode trigger fires (``events.classify``), as an asset event's ``payload``."""

    channel: str
    ts: str
    kind: str  # events.NEW, EDITED or THREAD_REPLY
    thread_ts: str | None
    message: NotRequired[SlackMessage]  # new posts and edits carry their message


class Announced(TypedDict):
    """A request a Slack event named (``events.requests_from_asset_events``)."""

    channel: str
    ts: str
    message: NotRequired[SlackMessage]


# ── resolve ─────────────────────────────────────────────────────────────────────────────────────
class QueryFilter(TypedDict):
    field: str
    value: str
    source: str  # looker.FilterSource: url, default or saved


class QueryDescription(TypedDict):
    """Which query ran (``looker.ResolvedQuery.describe()``): its id or slug, filters, one line of text."""

    kind: str
    title: str
    filters: list[QueryFilter]
    text: str
    id: NotRequired[str]
    slug: NotRequired[str | None]
    based_on: NotRequired[str]


class LinkQuery(QueryDescription):
    """A query a link gave, with the link and the product it went to (None: not run)."""

    link: str
    product: str | None


class StatedSpend(TypedDict):
    """The fraud spend a request states next to a link (``links.stated_spends``)."""

    amount: str
    where: str


class Job(TypedDict):
    """One notebook run for one link of a request."""

    link: str
    product: str
    query_id: str
    query: QueryDescription
    query_text: str
    input_nb: str
    output_nb: str
    sql: str
    stated_spend: StatedSpend | None


class NotebookOptions(TypedDict):
    kernel_name: str
    warehouse_conn_id: str
    timeout_seconds: int


class Resolved(TypedDict):
    """resolve's return value for one request."""

    ts: str
    label: str
    notebook: NotebookOptions
    status: ResolveStatus
    links: list[str]
    jobs: list[Job]
    problems: list[str]
    ignored: list[str]
    queries: list[LinkQuery]


class NotebookJob(TypedDict):
    input_nb: str
    output_nb: str
    parameters: dict[str, str]


class NotebookTask(TypedDict):
    """``CreditNotebookOperator``'s keyword arguments for one request (run_notebook's expand_kwargs)."""

    jobs: list[NotebookJob]
    kernel_name: str
    warehouse_conn_id: str
    timeout_seconds: int
    request_label: str


# ── approval (credit_bot.approval) ──────────────────────────────────────────────────────────────
class ApprovalState(StrEnum):
    """Where a reply that needs an approver stands: the ledger entry's ``approval["state"]``."""

    WAITING = "waiting"
    APPROVED = "approved"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"


class ApprovalConf(TypedDict):
    """A ``credit_bot_approval`` run's params (its ``conf``), set by ``approval.hand_over``."""

    channel: str
    ts: str
    attempt: int
    label: str
    requester: str
    reply: str
    amount: str
    parts: str
    permalink: str
    links: list[str]
    notebooks: list[str]
    approvers: list[str]
    reminder_minutes: int
    timeout_hours: int


class ApprovalRun(TypedDict):
    """``TriggerDagRunOperator`` keyword arguments for one ``credit_bot_approval`` run."""

    trigger_run_id: str
    conf: ApprovalConf


class ApprovalDecision(TypedDict, total=False):
    """What a ``credit_bot_approval`` run decided: its decision Variable (``store.decision_key``)."""

    state: ApprovalState
    by: str  # a Slack user id (via "slack") or an Airflow user (via "airflow")
    via: str
    at: str  # ISO time
    reason: str
    reply_ts: str | None  # approved: the reply posted
    amount: str  # approved: the amount posted
    error: str  # timed out: what the operators were told


class ApprovalInfo(TypedDict, total=False):
    """The ledger entry's ``approval``: the requests page's approval cell."""

    state: ApprovalState
    run_id: str  # the credit_bot_approval run
    asked: str  # ISO time
    by: str
    via: str
    at: str
    reason: str


# ── post_results ────────────────────────────────────────────────────────────────────────────────
class Decision(TypedDict, total=False):
    """What post_results should do for a request (``tasks.decide.decide``); never leaves the task."""

    action: Action
    error: str  # escalate, retry, escalated_earlier: the problem in words
    reason: str  # ignore: why
    amount: Decimal  # answer: the credit to post
    amount_parts: str  # answer: what a concatenated credit_amount was made of
    links: list[str]
    notebooks: list[str]  # executed notebooks' paths
    queries: list[str]  # per link, the one-line text of the query that ran
    earlier_amount: str | None  # answered_earlier: the amount the earlier reply's metadata holds
    reply_ts: str  # answered_earlier: the earlier reply


class EntryFields(TypedDict, total=False):
    """What the ledger keeps about a request (Admin → Variables → ``credit_bot_ledger``)."""

    outcome: Outcome
    dry_run: bool
    attempts: int
    last_error: str | None
    links: list[str]
    queries: list[str]
    requester: str
    amount: str | None  # dollars, two decimals, as posted
    amount_parts: str
    reply_ts: str | None  # the bot's reply (or link request) in the request's thread
    thread_checked: str  # the newest thread reply read while waiting for a link
    first_seen: str  # ISO time, set by ledger.record
    updated: str  # ISO time, set by ledger.record


class ShownFields(TypedDict, total=False):
    """Kept in the ledger only for the requests page: the post's first words, what ran, which task."""

    snippet: str
    notebooks: list[str]
    run_id: str
    map_index: int
    approval: ApprovalInfo  # a reply that needed an approver


class LedgerEntry(EntryFields, ShownFields, total=False):
    """One request in the ledger."""


class RunOnlyFields(TypedDict, total=False):
    """What an outcome carries for this run only; ``ledger.record`` never stores these."""

    channel: str
    forced: bool
    status: str  # a few words for the task's name in the Airflow UI
    markers: list[str]  # posting markers to drop once the ledger has the outcome
    undelivered: str  # an operator DM that reached nobody: the run ends failed
    approval_run: ApprovalRun  # awaiting_approval: the credit_bot_approval run to trigger


class RequestOutcome(LedgerEntry, RunOnlyFields, total=False):
    """post_results' return value (and fetch_requests' closing outcomes): a ledger entry for ``ts``."""

    ts: str


RUN_ONLY_KEYS = frozenset({"ts", *RunOnlyFields.__annotations__})


class Window(TypedDict):
    """fetch_requests' XCom ``window``: how far it read, and requests it closed without a task."""

    newest_ts: str | None
    expired: list[RequestOutcome]


class Recorded(TypedDict):
    """record_ledger's return value."""

    counts: dict[str, int]
    summary: str
    undelivered: dict[str, str]
    notebooks_removed: int
    # The credit_bot_approval runs to trigger; the DAG pushes them as XCom "approvals" of their own.
    approvals: NotRequired[list[ApprovalRun]]


class TaskRef(TypedDict):
    """Which task instance decided a request, for the requests page's log link."""

    run_id: str
    map_index: int


# ── the ledger Variable ─────────────────────────────────────────────────────────────────────────
class ChannelState(TypedDict):
    watermark: str | None  # newest message ts read by a scheduled run
    requests: dict[str, LedgerEntry]  # by message ts


class Ledger(TypedDict):
    """The ``credit_bot_ledger`` Variable: per channel, per mode (``live`` / ``dry_run``)."""

    version: int
    channels: dict[str, dict[str, ChannelState]]
