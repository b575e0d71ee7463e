"""The ledger at a glance: ``python -m credit_bot.ledger_report`` prints what CreditBot did, newest first.

Read-only. By default it reads the ``credit_bot_ledger`` Variable through Airflow's own
``Variable.get`` (the secrets backends, then the metadata DB of the deployment it runs in), so
run it where the Airflow CLI works (e.g. ``docker compose exec airflow-scheduler python -m
credit_bot.ledger_report``). ``--file`` reads a copy instead, e.g. one saved with
``airflow variables get credit_bot_ledger > ledger.json`` or ``airflow variables export``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import cast

from credit_bot import ledger
from credit_bot.ledger import LedgerReadError
from credit_bot.model import Ledger, LedgerEntry
from credit_bot.money import format_usd
from credit_bot.store import ServerVariables

__all__ = ["LedgerReadError", "LedgerRow"]

MODES = ("live", "dry_run")
ERROR_WIDTH = 60
COLUMNS = (
    ("time", "TIME (UTC)"),
    ("channel", "CHANNEL"),
    ("mode", "MODE"),
    ("ts", "TS"),
    ("outcome", "OUTCOME"),
    ("amount", "AMOUNT"),
    ("attempts", "ATTEMPTS"),
    ("last_error", "LAST ERROR"),
    ("links", "LOOKER LINKS"),
)
RIGHT_ALIGNED = frozenset({"amount", "attempts"})


class LedgerRow(LedgerEntry, total=False):
    """One request of the ledger as a row: its entry, plus where it is and when it was posted."""

    channel: str
    mode: str  # live or dry_run
    ts: str
    time: str | None  # the request message's time, ISO UTC


def read_variable() -> str | None:
    """The Variable's text through Airflow, or ``None`` when it does not exist yet (no run recorded)."""
    # Outside a task only the core Variable also reads the metadata DB; the SDK one would see just
    # environment variables and external backends.
    return ServerVariables().ledger_text()


def parse(text: str | None) -> Ledger:
    """A ledger from the Variable's text, or from a saved copy.

    Accepts the Variable's value itself and ``airflow variables export`` output (an object
    with the Variable's key, holding the value as a string or as JSON).
    """
    if text is None or not text.strip():
        return ledger.empty()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LedgerReadError(f"not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if isinstance(data, dict) and ledger.LEDGER_VARIABLE in data and "channels" not in data:
        data = data[ledger.LEDGER_VARIABLE]
        if isinstance(data, dict) and "value" in data:  # export with descriptions
            data = data["value"]
        if isinstance(data, str):
            return parse(data)
    return ledger.loads(json.dumps(data))


def request_time(ts: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def select(
    book: Ledger,
    *,
    channel: str | None = None,
    mode: str = "all",
    outcome: str | None = None,
    since_hours: float | None = None,
    limit: int | None = None,
    now: datetime | None = None,
) -> list[LedgerRow]:
    """The ledger's requests as flat rows, newest request first, filtered.

    Each row is the ledger entry plus ``channel``, ``mode``, ``ts`` and ``time`` (the request
    message's time, ISO UTC). ``since_hours`` keeps requests posted in the last that many hours.
    """
    if mode not in (*MODES, "all"):
        raise ValueError(f"mode must be live, dry_run or all, not {mode!r}")
    cutoff = None
    if since_hours is not None:
        cutoff = (now or datetime.now(UTC)) - timedelta(hours=since_hours)
    rows: list[LedgerRow] = []
    for channel_id, by_mode in sorted(book.get("channels", {}).items()):
        if channel and channel_id != channel:
            continue
        for mode_name in MODES:
            if mode not in ("all", mode_name):
                continue
            state = by_mode.get(mode_name)
            for ts, entry in (state["requests"] if state else {}).items():
                when = request_time(ts)
                if outcome and entry.get("outcome") != outcome:
                    continue
                if cutoff and (when is None or when < cutoff):
                    continue
                row = cast(LedgerRow, dict(entry))
                row["channel"], row["mode"], row["ts"] = channel_id, mode_name, ts
                row["time"] = when.isoformat(timespec="seconds") if when else None
                rows.append(row)
    rows.sort(key=lambda row: _sort_key(row["ts"]), reverse=True)
    return rows[:limit] if limit else rows


def _sort_key(ts: str) -> float:
    try:
        return float(ts)
    except ValueError:
        return float("-inf")


def shorten(text: str | None, width: int = ERROR_WIDTH) -> str:
    """One line, at most ``width`` characters."""
    if not text:
        return ""
    line = " ".join(str(text).split())
    return line if len(line) <= width else line[: width - 1] + "…"


def amount_text(value: object) -> str:
    if value is None or value == "":
        return ""
    try:
        return format_usd(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return str(value)  # not ours to judge here: show what the ledger holds


def cells(row: LedgerRow) -> dict[str, str]:
    """The text of one row's table cells."""
    when = request_time(row["ts"])
    return {
        "time": when.strftime("%Y-%m-%d %H:%M:%S") if when else "?",
        "channel": row["channel"],
        "mode": row["mode"],
        "ts": row["ts"],
        "outcome": str(row.get("outcome") or "?"),
        "amount": amount_text(row.get("amount")),
        "attempts": str(row.get("attempts", "")),
        "last_error": shorten(row.get("last_error")),
        "links": " ".join(row.get("links") or []),
    }


def table(rows: list[LedgerRow]) -> str:
    """A plain aligned text table, one line per request."""
    if not rows:
        return "no requests match"
    lines = [cells(row) for row in rows]
    widths = {key: max(len(title), *(len(line[key]) for line in lines)) for key, title in COLUMNS}

    def render(values: dict[str, str]) -> str:
        parts = [
            values[key].rjust(widths[key]) if key in RIGHT_ALIGNED else values[key].ljust(widths[key])
            for key, _ in COLUMNS
        ]
        return "  ".join(parts).rstrip()

    header = render(dict(COLUMNS))
    return "\n".join([header, *(render(line) for line in lines)])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m credit_bot.ledger_report",
        description="Print what CreditBot did with recent requests (read-only), newest first.",
    )
    parser.add_argument(
        "--file",
        help="read a saved copy of the ledger (e.g. `airflow variables get credit_bot_ledger > l.json`; "
        "'-' for stdin) instead of the Variable",
    )
    parser.add_argument("--channel", help="only this channel ID (C…)")
    parser.add_argument("--mode", choices=(*MODES, "all"), default="all", help="default: all")
    parser.add_argument(
        "--outcome",
        choices=sorted(ledger.FINAL | ledger.OPEN | {ledger.AWAITING_APPROVAL}),
        help="only requests with this outcome",
    )
    parser.add_argument("--since", type=float, metavar="HOURS", help="only requests posted in the last HOURS")
    parser.add_argument("--limit", type=int, default=50, metavar="N", help="at most N rows (0: all)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.file == "-":
            text = sys.stdin.read()
        elif args.file:
            text = Path(args.file).read_text(encoding="utf-8")
        else:
            text = read_variable()
        book = parse(text)
    except (OSError, LedgerReadError) as exc:
        source = args.file or f"Variable {ledger.LEDGER_VARIABLE!r}"
        print(f"cannot read the ledger from {source}: {exc}", file=sys.stderr)
        return 1
    rows = select(
        book,
        channel=args.channel,
        mode=args.mode,
        outcome=args.outcome,
        since_hours=args.since,
        limit=max(args.limit, 0),
    )
    print(json.dumps(rows, indent=1, sort_keys=True) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
