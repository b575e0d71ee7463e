"""The requests page: the ledger as an HTML table with filters and totals, rendered on the server.

Rows come from :func:`credit_bot.ledger_report.select` and their cells from
:func:`credit_bot.ledger_report.cells`, as ``make ledger`` prints them; everything taken from the
ledger or the request is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TypedDict
from urllib.parse import quote

from credit_bot import ledger, ledger_report
from credit_bot.errors import RejectedRequest
from credit_bot.ledger_report import LedgerRow
from credit_bot.model import ApprovalState, Ledger
from credit_bot.money import format_usd
from credit_bot.notebook_store import NotebookRef
from credit_bot.ui import urls

PERIODS = {"24h": 24.0, "7d": 24.0 * 7, "30d": 24.0 * 30, "all": None}
MODES = {"all": "Live and dry-run", "live": "Live", "dry_run": "Dry-run"}
OUTCOMES = ("", *sorted(ledger.FINAL | ledger.OPEN | {ledger.AWAITING_APPROVAL}))
OUTCOME_LABELS: dict[str, str] = {"": "any", ledger.AWAITING_APPROVAL: "waiting for approval"}
MAX_ROWS = 200
DAG_ID = "credit_bot"

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#1a202c}
h1{font-size:20px;margin:0 0 12px}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #e2e8f0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f7fafc}
td.num{text-align:right;white-space:nowrap}
.totals{display:flex;gap:24px;margin:12px 0;padding:8px 12px;background:#f7fafc;border-radius:6px}
.totals b{font-size:18px;display:block}
.outcome-answered{color:#276749}.outcome-escalated{color:#c53030}.outcome-retrying{color:#b7791f}
.muted{color:#718096}
form{margin-bottom:8px}
.banner{padding:8px 12px;margin:0 0 12px;border-radius:6px;background:#fffbea;border:1px solid #f6e05e}
"""


class BadFilter(RejectedRequest, ValueError):
    """A filter value the page does not offer."""


@dataclass(frozen=True)
class Filters:
    outcome: str = ""
    mode: str = "all"
    period: str = "all"
    request: str = ""  # "<channel>:<ts>", from the post_results extra link

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        filters = cls(
            outcome=query.get("outcome", "") or "",
            mode=query.get("mode", "all") or "all",
            period=query.get("period", "all") or "all",
            request=query.get("request", "") or "",
        )
        if filters.outcome not in OUTCOMES:
            raise BadFilter(f"outcome must be one of {', '.join(o for o in OUTCOMES if o)}")
        if filters.mode not in MODES:
            raise BadFilter(f"mode must be one of {', '.join(MODES)}")
        if filters.period not in PERIODS:
            raise BadFilter(f"period must be one of {', '.join(PERIODS)}")
        return filters


def e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )


def permalink(workspace: str | None, channel: str, ts: str) -> str | None:
    """The request's Slack permalink, in the form ``chat.getPermalink`` gives for a channel post."""
    if not workspace or not workspace.startswith("https://"):
        return None
    return f"{workspace.rstrip('/')}/archives/{quote(channel)}/p{ts.replace('.', '')}"


def task_log_url(base_url: str | None, row: LedgerRow) -> str | None:
    """The request's post_results task instance in the Airflow UI (its log is one tab away)."""
    run_id, map_index = row.get("run_id"), row.get("map_index")
    if not run_id or map_index is None:
        return None
    return (
        f"{urls.base_path(base_url)}/dags/{DAG_ID}/runs/{quote(str(run_id), safe='')}"
        f"/tasks/post_results/mapped/{int(map_index)}"
    )


class Totals(TypedDict):
    requests: int
    answered: int
    amount: Decimal
    link_requested: int
    escalated: int


def totals(rows: list[LedgerRow]) -> Totals:
    """Answered, amount approved, asked for a link, escalated: over the rows given."""
    amount = Decimal("0")
    for row in rows:
        if row.get("outcome") == ledger.ANSWERED and row.get("amount"):
            try:
                amount += Decimal(str(row["amount"]))
            except InvalidOperation:
                continue
    count = {name: sum(1 for r in rows if r.get("outcome") == name) for name in ledger.FINAL | ledger.OPEN}
    return {
        "requests": len(rows),
        "answered": count[ledger.ANSWERED],
        "amount": amount,
        "link_requested": count[ledger.LINK_REQUESTED],
        "escalated": count[ledger.ESCALATED],
    }


def _select(name: str, label: str, options: Mapping[str, str], chosen: str) -> str:
    items = "".join(
        f'<option value="{e(value)}"{" selected" if value == chosen else ""}>{e(text)}</option>'
        for value, text in options.items()
    )
    return f'<label>{e(label)} <select name="{e(name)}">{items}</select></label> '


def _notebook_cells(row: LedgerRow, output_dir: str, kept: set[str] | None, app_base: str) -> str:
    links = []
    for index, path in enumerate(row.get("notebooks") or []):
        ref = NotebookRef.from_path(output_dir, str(path))
        label = f"notebook {index + 1}" if len(row.get("notebooks") or []) > 1 else "notebook"
        if ref is None:
            links.append(f'<span class="muted" title="{e(path)}">{e(label)}: elsewhere</span>')
        elif kept is not None and str(path) not in kept:
            links.append(f'<span class="muted">{e(label)} removed (retention)</span>')
        else:
            links.append(f'<a href="{e(app_base + urls.notebook_route(ref))}">{e(label)}</a>')
    return "<br>".join(links)


def requests_page(
    book: Ledger,
    filters: Filters,
    *,
    output_dir: str,
    kept: Callable[[set[str]], set[str]] | None,
    base_url: str | None,
    retention_days: int,
    workspace: str | None = None,
    now: datetime | None = None,
) -> str:
    """The whole page. ``kept`` answers which notebook paths of the given run folders are still stored."""
    now = now or datetime.now(UTC)
    mode = filters.mode
    period_rows = ledger_report.select(book, mode=mode, since_hours=PERIODS[filters.period], now=now)
    rows = period_rows
    if filters.request:
        channel, _, ts = filters.request.partition(":")
        rows = [r for r in rows if r["channel"] == channel and r["ts"] == ts]
    if filters.outcome:
        rows = [r for r in rows if r.get("outcome") == filters.outcome]
    shown = rows[:MAX_ROWS]
    stored = None
    if kept is not None:
        refs = [
            NotebookRef.from_path(output_dir, str(p)) for row in shown for p in row.get("notebooks") or []
        ]
        stored = kept({ref.run_dir for ref in refs if ref})
    app_base = urls.base_path(base_url) + urls.URL_PREFIX
    head = (
        "<tr><th>When (UTC)</th><th>Requester</th><th>Request</th><th>Mode</th><th>Outcome</th>"
        "<th>Amount</th><th>Attempts</th><th>Last error</th><th>Links</th></tr>"
    )
    body_rows = [_row(row, workspace, output_dir, stored, app_base, base_url) for row in shown]
    form = _form(app_base, filters)
    summary = _summary(totals(period_rows))
    table = (
        f"<table><thead>{head}</thead><tbody>{''.join(body_rows)}</tbody></table>"
        if body_rows
        else '<p class="muted">No request matches these filters.</p>'
    )
    more = (
        f'<p class="muted">Showing the newest {len(shown)} of {len(rows)}; '
        "narrow the filters to see older ones.</p>"
        if len(rows) > len(shown)
        else ""
    )
    note = (
        f'<p class="muted">Executed notebooks are kept {retention_days} days; the ledger keeps finished '
        "requests for <code>ledger_retention_days</code>.</p>"
    )
    return page("CreditBot requests", f"<h1>CreditBot requests</h1>{form}{summary}{table}{more}{note}")


def _form(app_base: str, filters: Filters) -> str:
    """The filters, as a GET form."""
    return (
        f'<form method="get" action="{e(app_base)}/">'
        + _select(
            "outcome",
            "Outcome",
            {o: OUTCOME_LABELS.get(o) or o.replace("_", " ") for o in OUTCOMES},
            filters.outcome,
        )
        + _select("mode", "Mode", MODES, filters.mode)
        + _select(
            "period",
            "Period",
            {
                "24h": "last 24 hours",
                "7d": "last 7 days",
                "30d": "last 30 days",
                "all": "everything in the ledger",
            },
            filters.period,
        )
        + '<button type="submit">Show</button></form>'
    )


def _summary(sums: Totals) -> str:
    """The totals strip over the period's rows."""
    return (
        '<div class="totals" aria-label="Totals">'
        f"<div><b>{sums['requests']}</b>requests</div>"
        f"<div><b>{sums['answered']}</b>answered</div>"
        f"<div><b>{e(format_usd(sums['amount']))}</b>approved</div>"
        f"<div><b>{sums['link_requested']}</b>asked for a link</div>"
        f"<div><b>{sums['escalated']}</b>escalated</div></div>"
    )


def _row(
    row: LedgerRow,
    workspace: str | None,
    output_dir: str,
    stored: set[str] | None,
    app_base: str,
    base_url: str | None,
) -> str:
    """One request as a table row: its cells, and links to Slack, its queries, notebooks and task log."""
    cell = ledger_report.cells(row)
    links = []
    slack = permalink(workspace, row["channel"], row["ts"])
    if slack:
        links.append(f'<a href="{e(slack)}" target="_blank" rel="noopener noreferrer">Slack thread</a>')
    else:
        links.append(f'<span class="muted">{e(row["channel"])} {e(row["ts"])}</span>')
    for query in row.get("queries") or []:  # which query each link gave, and its filters' sources
        links.append(f'<span class="muted">{e(query)}</span>')
    notebooks = _notebook_cells(row, output_dir, stored, app_base)
    if notebooks:
        links.append(notebooks)
    log = task_log_url(base_url, row)
    if log:
        links.append(f'<a href="{e(log)}" target="_top">task log</a>')
    outcome = cell["outcome"]
    requester = row.get("requester") or row.get("user") or ""  # "user": entries before the field
    return (
        f'<tr data-ts="{e(row["ts"])}"><td>{e(cell["time"])}</td><td>{e(requester)}</td>'
        f"<td>{e(row.get('snippet') or '')}</td><td>{e(cell['mode'].replace('_', '-'))}</td>"
        f'<td class="outcome-{e(outcome)}">{e(outcome.replace("_", " "))}{_approval(row)}</td>'
        f'<td class="num">{e(cell["amount"])}{_parts(row)}</td><td class="num">{e(cell["attempts"])}</td>'
        f'<td title="{e(row.get("last_error") or "")}">{e(cell["last_error"])}</td>'
        f"<td>{'<br>'.join(links)}</td></tr>"
    )


def _approval(row: LedgerRow) -> str:
    """Who approved or rejected the reply, and when (the 'approval' setting); nothing when none was asked."""
    approval = row.get("approval") or {}
    state = approval.get("state")
    if not state:
        return ""
    if state == ApprovalState.WAITING:
        text = f"waiting for approval since {str(approval.get('asked') or '')[:16].replace('T', ' ')}"
    elif state == ApprovalState.TIMED_OUT:
        text = "no approver decided in time"
    else:
        by = approval.get("by") or "?"
        via = " (in Airflow)" if approval.get("via") == "airflow" else ""
        when = str(approval.get("at") or "")[:16].replace("T", " ")
        text = f"{state} by {by}{via} at {when}"
        if approval.get("reason"):
            text += f": {approval['reason']}"
    return f'<br><span class="muted approval">{e(text)}</span>'


def _parts(row: LedgerRow) -> str:
    """The per-mode parts of a concatenated notebook credit (``basic $4,948.80 + standard nan …``)."""
    parts = row.get("amount_parts")
    return f'<br><span class="muted">{e(parts)}</span>' if parts else ""


def notebook_banner(
    ref: NotebookRef, secrets_hidden: int, requests_href: str, credit: str | None = None
) -> str:
    """The strip above an executed notebook: what it is, what CreditBot read from it, and a way back."""
    read = (
        f"CreditBot read <b>credit_amount = {e(credit)}</b> from this notebook"
        if credit
        else "CreditBot found no credit_amount in this notebook"
    )
    parts = [
        f'<div class="credit-bot-banner" style="{_BANNER}font-size:16px">{read} '
        "(the reply rounds and sums a request's links; the ledger has the amount posted)</div>",
        f'<div class="credit-bot-banner" style="{_BANNER}">'
        f'<a href="{e(requests_href)}">← CreditBot requests</a>'
        f" · executed notebook <code>{e(ref.run_dir)}/{e(ref.name)}</code> · code cells are folded: "
        "click <em>Code</em> to read one</div>",
    ]
    if secrets_hidden:
        parts.append(
            f'<div class="credit-bot-banner" style="{_BANNER}background:#fff5f5;border-color:#fc8181">'
            f"This notebook contains a credential ({secrets_hidden} occurrence(s)); "
            "it is hidden here as ***. Fix the notebook so it never prints secrets.</div>"
        )
    return "".join(parts)


_BANNER = (
    "font:14px system-ui,sans-serif;padding:8px 12px;margin:8px;border-radius:6px;border:1px solid #cbd5e0;"
)


def error_page(status: int, message: str) -> str:
    return page(f"CreditBot: {status}", f"<h1>{status}</h1><p>{e(message)}</p>")
