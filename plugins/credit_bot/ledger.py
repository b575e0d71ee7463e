"""The ledger: what CreditBot did with each request, kept in the Airflow Variable ``credit_bot_ledger``.

One JSON document (:class:`credit_bot.model.Ledger`), human-readable in Admin → Variables,
written only by the ``record_ledger`` task (one writer per run; ``max_active_runs=1`` keeps runs
from overlapping) through :mod:`credit_bot.store`. Entries older than the retention window are
dropped, so it stays small.

Dry-run and live are kept apart: a dry run never marks a request done for live runs, so switching
``dry_run`` off answers every request still inside the lookback window.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import cast

from credit_bot.errors import SetupError
from credit_bot.model import (
    FINAL,
    OPEN,
    RUN_ONLY_KEYS,
    ChannelState,
    Ledger,
    LedgerEntry,
    Outcome,
    RequestOutcome,
)

LEDGER_VARIABLE = "credit_bot_ledger"
LEDGER_VERSION = 1

# The outcomes by their old names (tests and callers that predate credit_bot.model use them).
ANSWERED = Outcome.ANSWERED
LINK_REQUESTED = Outcome.LINK_REQUESTED
IGNORED = Outcome.IGNORED
ESCALATED = Outcome.ESCALATED
RETRYING = Outcome.RETRYING
EXPIRED = Outcome.EXPIRED
DELETED = Outcome.DELETED
AWAITING_APPROVAL = Outcome.AWAITING_APPROVAL
REJECTED = Outcome.REJECTED

__all__ = ["FINAL", "LEDGER_VARIABLE", "OPEN", "LedgerReadError"]


class LedgerReadError(SetupError, ValueError):
    """The ledger Variable (or a saved copy of it) is not a CreditBot ledger."""


def empty() -> Ledger:
    return {"version": LEDGER_VERSION, "channels": {}}


def loads(text: str | None) -> Ledger:
    if not text:
        return empty()
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != LEDGER_VERSION:
        raise LedgerReadError(
            f"Variable {LEDGER_VARIABLE!r} is not a CreditBot ledger (version {LEDGER_VERSION})"
        )
    return cast(Ledger, data)


def dumps(ledger: Ledger) -> str:
    return json.dumps(ledger, indent=1, sort_keys=True)


def _mode(dry_run: bool) -> str:
    return "dry_run" if dry_run else "live"


def channel_state(ledger: Ledger, channel: str, dry_run: bool) -> ChannelState:
    """The part of the ledger for one channel and mode (created empty when missing)."""
    channels = ledger.setdefault("channels", {})
    empty_state: ChannelState = {"watermark": None, "requests": {}}
    return channels.setdefault(channel, {}).setdefault(_mode(dry_run), empty_state)


def lookup(ledger: Ledger, channel: str, ts: str, dry_run: bool) -> LedgerEntry | None:
    """The entry for a request. A live entry also counts for dry runs; a dry-run entry never for live."""
    channel_data = ledger.get("channels", {}).get(channel, {})
    modes = ["live"] if not dry_run else ["live", "dry_run"]
    for mode in modes:
        state = channel_data.get(mode)
        entry = state["requests"].get(ts) if state else None
        if entry:
            return entry
    return None


def open_requests(ledger: Ledger, channel: str, dry_run: bool) -> list[str]:
    """The ts of every request a later run must look at again (waiting for a link, retrying)."""
    state = channel_state(ledger, channel, dry_run)
    return [ts for ts, entry in state["requests"].items() if entry.get("outcome") in OPEN]


def record(
    ledger: Ledger,
    *,
    channel: str,
    dry_run: bool,
    outcomes: Iterable[RequestOutcome],
    newest_ts: str | None,
    now: datetime | None = None,
    retention_days: int = 30,
) -> Ledger:
    """Merge a run's outcomes into the ledger, move the watermark and prune old entries."""
    now = now or datetime.now(UTC)
    state = channel_state(ledger, channel, dry_run)
    requests = state["requests"]
    for outcome in outcomes:
        ts = outcome["ts"]
        entry: LedgerEntry = requests.get(ts) or {
            "first_seen": now.isoformat(timespec="seconds"),
            "attempts": 0,
        }
        if entry.get("outcome") in FINAL and not outcome.get("forced"):
            continue  # a concurrent or repeated outcome never overwrites a final one
        kept = {k: v for k, v in outcome.items() if k not in RUN_ONLY_KEYS}
        entry.update(cast(LedgerEntry, kept))
        entry["updated"] = now.isoformat(timespec="seconds")
        requests[ts] = entry
    watermark = state["watermark"]
    if newest_ts and (watermark is None or float(newest_ts) > float(watermark)):
        state["watermark"] = newest_ts
    cutoff = (now - timedelta(days=retention_days)).timestamp()
    for ts in [ts for ts, e in requests.items() if float(ts) < cutoff and e.get("outcome") not in OPEN]:
        del requests[ts]
    return ledger
