"""Slack message shapes the bot meets beyond a plain user post, as Slack documents them.

Built from Slack's own material, not from CreditBot's code: the rich-text block reference
(docs.slack.dev, "Rich text block" and its section/list/quote/preformatted, text, link and user
elements), Workflow Builder posts (``subtype: bot_message`` with ``bot_id``, ``bot_profile``, no
``user``: slackapi/bolt-python issue 817), forwarded and shared messages (``attachments[]`` with
``is_share`` / ``is_msg_unfurl``, ``from_url``, ``text``, ``fallback`` and ``message_blocks[].message
.blocks``: slackapi/java-slack-sdk ``json-logs/samples/api/conversations.history.json``), link
unfurls (``from_url`` / ``original_url`` naming a link of the post) and tombstones. Used by unit
tests and by the full DAG runs, which put these into the sandbox with ``add_message(**extra)``.
"""

from __future__ import annotations

from typing import Any

WORKFLOW_BOT = "B0WORKFLOW"
WORKFLOW_APP = "A0WORKFLOW"
OTHER_BOT = "B0DIGESTBOT"
TEAM = "T0SANDBOX"


def rich_text(*sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A ``rich_text`` block of ``rich_text_section`` elements, as the Slack composer sends it."""
    return [
        {
            "type": "rich_text",
            "block_id": "rt01",
            "elements": [{"type": "rich_text_section", "elements": list(section)} for section in sections],
        }
    ]


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def link(url: str, label: str | None = None) -> dict[str, Any]:
    return {"type": "link", "url": url, **({"text": label} if label else {})}


def user(user_id: str) -> dict[str, Any]:
    return {"type": "user", "user_id": user_id}


def workflow_post(*elements: dict[str, Any], bot_id: str = WORKFLOW_BOT, app_id: str = WORKFLOW_APP) -> dict:
    """The ``add_message`` fields of a Workflow Builder form's post: bot_message, content only in blocks."""
    return {
        "user": None,
        "subtype": "bot_message",
        "bot_id": bot_id,
        "username": "Credit request form",
        "bot_profile": {
            "id": bot_id,
            "app_id": app_id,
            "name": "Credit request form",
            "deleted": False,
            "team_id": TEAM,
        },
        "blocks": rich_text(list(elements)),
    }


def workflow_form(requester: str, spend: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The elements of a credit form: who asks (a user field), and the fraud spend line."""
    elements = [text("Submitted by "), user(requester), text("\nAccount: ACacme\nFraud spend: ")]
    return [*elements, spend if spend is not None else text("$9,000.00 (link to follow)")]


def forwarded(shared_text: str, blocks: list[dict[str, Any]], *, channel: str, ts: str) -> dict[str, Any]:
    """A message forwarded from elsewhere: empty ``text``, the original in one share attachment."""
    permalink = f"https://credit-sandbox.slack.com/archives/{channel}/p{ts.replace('.', '')}"
    return {
        "attachments": [
            {
                "ts": ts,
                "channel_id": channel,
                "author_id": "U0ANALYST",
                "is_share": True,
                "is_msg_unfurl": True,
                "from_url": permalink,
                "fallback": f"[{ts}] {shared_text}",
                "text": shared_text,
                "message_blocks": [
                    {"team": TEAM, "channel": channel, "ts": ts, "message": {"blocks": blocks}}
                ],
                "mrkdwn_in": ["text"],
                "color": "D0D0D0",
            }
        ],
    }


def unfurl(url: str, title: str = "Verify fraud spend") -> dict[str, Any]:
    """Slack's link preview of ``url`` (an attachment naming it in ``from_url`` and ``original_url``)."""
    return {
        "from_url": url,
        "original_url": url,
        "service_name": "Looker",
        "title": title,
        "title_link": url,
        "fallback": f"Looker: {title}",
        "text": "Fraud spend by country, last 7 days",
        "id": 1,
    }
