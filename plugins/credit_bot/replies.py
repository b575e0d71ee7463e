"""The texts CreditBot posts: the approval reply, the link request, and operator DMs.

Text that came from users is never echoed into the channel, and everything the bot posts is
sent with ``parse="none"`` and ``link_names=False`` so nothing in it can ping ``@channel``.
"""

from __future__ import annotations

import re
from decimal import Decimal

from credit_bot.money import format_usd

_SLACK_ID = re.compile(r"^[UWB][A-Z0-9]{2,}$")

REPLY_EVENT_TYPE = "credit_bot_reply"
LINK_REQUEST_EVENT_TYPE = "credit_bot_link_request"
ESCALATION_EVENT_TYPE = "credit_bot_escalation"


def approval(amount: Decimal, category: str) -> str:
    """``Approved, $4,948.80, exceptions``."""
    return f"Approved, {format_usd(amount)}, {category}"


def link_request(looker_hosts: list[str]) -> str:
    hosts = ", ".join(looker_hosts) if looker_hosts else "your Looker instance"
    return (
        "Please provide a Looker link (a Look, an explore, a share link, a dashboard or a SQL Runner "
        f"query on {hosts}) with the fraud spend for this request. Edit this post or reply in "
        "this thread with the link and CreditBot will pick it up."
    )


def defang(text: str, limit: int = 300) -> str:
    """User text made safe to quote in a DM: mentions disarmed, length bounded."""
    # Slack's own escaping: &lt; is shown as "<" but never parsed as a mention or link.
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def operator_dm(
    *,
    problem: str,
    permalink: str | None,
    channel: str,
    ts: str,
    log_url: str | None,
    next_step: str,
    links: list[str] | None = None,
    notebooks: list[str] | None = None,
    requester: str | None = None,
    base_url: str | None = None,
    queries: list[str] | None = None,
) -> str:
    """A private message to an operator: what failed, which request, where to look, what happens next.

    ``requester`` is who asked: a person's ID (shown as their name), or a bot's when a workflow
    post named nobody.
    ``notebooks`` are executed notebooks' paths: linked to CreditBot's notebook view in the Airflow
    UI through ``base_url`` (Airflow's ``[api] base_url``), or named, saying why there is no link.
    """
    lines = [f":warning: CreditBot could not answer a credit request: {defang(problem, 500)}"]
    lines.append(f"• Request: {permalink or f'channel {channel}, ts {ts}'}")
    if requester and _SLACK_ID.match(requester):
        lines.append(
            f"• Requested by: {'bot ' + requester if requester.startswith('B') else f'<@{requester}>'}"
        )
    for link in links or []:
        lines.append(f"• Looker link: {link}")
    for query in queries or []:  # which SQL ran: the query's id or slug, its filters and their source
        lines.append(f"• Query: {defang(query, 1000)}")
    for path in notebooks or []:
        lines.append(f"• Executed notebook: {notebook_line(path, base_url)}")
    if log_url:
        lines.append(f"• Airflow log: {log_url}")
    lines.append(f"• Next: {next_step}")
    return "\n".join(lines)


def notebook_line(path: str, base_url: str | None) -> str:
    """The notebook view's URL, or the path and why there is no link."""
    from credit_bot.ui.urls import notebook_link

    if not base_url or not base_url.startswith(("http://", "https://")):
        return f"{path} (no link: Airflow's [api] base_url is not configured)"
    return notebook_link(path, base_url) or f"{path} (not under the output_dir, so not in the Airflow UI)"


def dry_run_preview(text: str, permalink: str | None) -> str:
    """What a dry run would have posted, for the operators to judge going live."""
    return f":mag: CreditBot DRY RUN: would reply in {permalink or 'the thread'}:\n> {text}"
