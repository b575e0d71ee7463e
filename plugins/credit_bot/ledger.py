"""The ledger: what CreditBot did with each request, kept in the Airflow Variable ``credit_bot_ledger``.

One JSON document, human-readable in Admin → Variables, written only by the ``record_ledger``
task (one writer per run; ``max_active_runs=1`` keeps runs from overlapping). Entries older than
the retention window are dropped, so it stays small.

Dry-run and live are kept apart: a dry run never marks a request done for live runs, so switching
``dry_run`` off answers every request still inside the lookback window.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

LEDGER_VARIABLE = "credit_bot_ledger"
LEDGER_VERSION = 1

ANSWERED = "answered"
LINK_REQUESTED = "link_requested"
IGNORED = "ignored"
ESCALATED = "escalated"
RETRYING = "retrying"
EXPIRED = "expired"
DELETED = "deleted"
# A computed reply waiting for an approver (credit_bot.approval); its credit_bot_approval run decides,
# and the next record_ledger merges the decision: answered, rejected, or escalated (timed out).
AWAITING_APPROVAL = "awaiting_approval"
REJECTED = "rejected"

FINAL = frozenset({ANSWERED, IGNORED, ESCALATED, EXPIRED, DELETED, REJECTED})
OPEN = frozenset({LINK_REQUESTED, RETRYING})


def empty() -> dict[str, Any]:
    return {"version": LEDGER_VERSION, "channels": {}}


def loads(text: str | None) -> dict[str, Any]:
    if not text:
        return empty()
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != LEDGER_VERSION:
        raise ValueError(f"Variable {LEDGER_VARIABLE!r} is not a CreditBot ledger (version {LEDGER_VERSION})")
    return data


def dumps(ledger: dict[str, Any]) -> str:
    return json.dumps(ledger, indent=1, sort_keys=True)


def _mode(dry_run: bool) -> str:
    return "dry_run" if dry_run else "live"


def channel_state(ledger: dict[str, Any], channel: str, dry_run: bool) -> dict[str, Any]:
    """The part of the ledger for one channel and mode (created empty when missing)."""
    channels = ledger.setdefault("channels", {})
    return channels.setdefault(channel, {}).setdefault(_mode(dry_run), {"watermark": None, "requests": {}})


def lookup(ledger: dict[str, Any], channel: str, ts: str, dry_run: bool) -> dict[str, Any] | None:
    """The entry for a request. A live entry also counts for dry runs; a dry-run entry never for live."""
    channel_data = ledger.get("channels", {}).get(channel, {})
    modes = ["live"] if not dry_run else ["live", "dry_run"]
    for mode in modes:
        entry = channel_data.get(mode, {}).get("requests", {}).get(ts)
        if entry:
            return entry
    return None


def record(
    ledger: dict[str, Any],
    *,
    channel: str,
    dry_run: bool,
    outcomes: list[dict[str, Any]],
    newest_ts: str | None,
    now: datetime | None = None,
    retention_days: int = 30,
) -> dict[str, Any]:
    """Merge a run's outcomes into the ledger, move the watermark and prune old entries."""
    now = now or datetime.now(UTC)
    state = channel_state(ledger, channel, dry_run)
    requests = state["requests"]
    for outcome in outcomes:
        ts = outcome["ts"]
        entry = requests.get(ts, {"first_seen": now.isoformat(timespec="seconds"), "attempts": 0})
        if entry.get("outcome") in FINAL and not outcome.get("forced"):
            continue  # a concurrent or repeated outcome never overwrites a final one
        entry.update(
            {
                k: v
                for k, v in outcome.items()
                if k not in ("ts", "channel", "forced", "markers", "status", "undelivered", "approval_run")
            }
        )
        entry["updated"] = now.isoformat(timespec="seconds")
        requests[ts] = entry
    if newest_ts and (state["watermark"] is None or float(newest_ts) > float(state["watermark"])):
        state["watermark"] = newest_ts
    cutoff = (now - timedelta(days=retention_days)).timestamp()
    for ts in [ts for ts, e in requests.items() if float(ts) < cutoff and e.get("outcome") not in OPEN]:
        del requests[ts]
    return ledger


# ── posting markers ─────────────────────────────────────────────────────────────────────────────
# One short-lived Variable per reply being posted, written only by the post_results task of that
# request: "posting" just before chat.postMessage, "posted:<reply ts>" right after. record_ledger
# deletes it once the outcome is in the ledger. A marker found later means a try died in between:
# "posted" is trusted, "posting" sends the bot to read the thread before posting (the one case
# that costs a conversations.replies call, which Slack rate-limits hard).
POSTING = "posting"
POSTED = "posted:"


def post_marker(channel: str, ts: str, event_type: str) -> str:
    return f"credit_bot_posting__{channel}__{ts}__{event_type}"
