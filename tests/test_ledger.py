"""Tests for credit_bot.ledger: what CreditBot did with each request, kept between runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from credit_bot import ledger

CHANNEL = "C0123ABCD"
NOW = datetime.fromtimestamp(1_764_000_000, UTC)
TS = f"{NOW.timestamp() - 3600:.6f}"  # a message from an hour ago


def _ts(days_ago: float) -> str:
    return f"{(NOW - timedelta(days=days_ago)).timestamp():.6f}"


def _record(book: dict[str, Any], outcomes: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("dry_run", False)
    kwargs.setdefault("newest_ts", None)
    kwargs.setdefault("now", NOW)
    return ledger.record(book, channel=CHANNEL, outcomes=outcomes, **kwargs)


def test_record_then_lookup() -> None:
    book = _record(ledger.empty(), [{"ts": TS, "outcome": ledger.ANSWERED, "attempts": 1, "reply_ts": "1.2"}])
    entry = ledger.lookup(book, CHANNEL, TS, dry_run=False)
    assert entry is not None
    assert entry["outcome"] == ledger.ANSWERED
    assert entry["attempts"] == 1
    assert entry["reply_ts"] == "1.2"
    assert entry["updated"] == NOW.isoformat(timespec="seconds")
    assert "ts" not in entry


@pytest.mark.parametrize(
    ("recorded_dry", "lookup_dry", "found"),
    [
        pytest.param(False, False, True, id="live-for-live"),
        pytest.param(False, True, True, id="live-counts-for-dry-run"),
        pytest.param(True, True, True, id="dry-for-dry"),
        pytest.param(True, False, False, id="dry-run-never-counts-for-live"),
    ],
)
def test_lookup_modes(recorded_dry: bool, lookup_dry: bool, found: bool) -> None:
    book = _record(ledger.empty(), [{"ts": TS, "outcome": ledger.ANSWERED}], dry_run=recorded_dry)
    assert (ledger.lookup(book, CHANNEL, TS, dry_run=lookup_dry) is not None) is found


@pytest.mark.parametrize(
    ("channel", "ts"),
    [
        pytest.param("C9999ZZZZ", TS, id="other-channel"),
        pytest.param(CHANNEL, "1764000000.999999", id="other-ts"),
    ],
)
def test_lookup_missing(channel: str, ts: str) -> None:
    book = _record(ledger.empty(), [{"ts": TS, "outcome": ledger.ANSWERED}])
    assert ledger.lookup(book, channel, ts, dry_run=False) is None


def test_lookup_on_empty_ledger() -> None:
    assert ledger.lookup(ledger.empty(), CHANNEL, TS, dry_run=True) is None


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param(["1764000000.000100"], "1764000000.000100", id="first"),
        pytest.param(["1764000000.000100", "1764000001.000000"], "1764000001.000000", id="forward"),
        pytest.param(["1764000001.000000", "1764000000.000100"], "1764000001.000000", id="never-back"),
        pytest.param(["1764000000.000100", None], "1764000000.000100", id="none-keeps"),
        pytest.param(["999999999.000000", "1000000000.000000"], "1000000000.000000", id="numeric-not-string"),
    ],
)
def test_watermark_only_moves_forward(steps: list[str | None], expected: str) -> None:
    book = ledger.empty()
    for newest in steps:
        _record(book, [], newest_ts=newest)
    assert ledger.channel_state(book, CHANNEL, False)["watermark"] == expected


def test_watermarks_are_per_mode() -> None:
    book = _record(ledger.empty(), [], newest_ts="1764000000.000100", dry_run=True)
    assert ledger.channel_state(book, CHANNEL, True)["watermark"] == "1764000000.000100"
    assert ledger.channel_state(book, CHANNEL, False)["watermark"] is None


@pytest.mark.parametrize("final", sorted(ledger.FINAL))
def test_final_outcome_not_overwritten(final: str) -> None:
    book = _record(ledger.empty(), [{"ts": TS, "outcome": final, "attempts": 1}])
    _record(book, [{"ts": TS, "outcome": ledger.RETRYING, "attempts": 2}])
    entry = ledger.lookup(book, CHANNEL, TS, dry_run=False)
    assert entry is not None
    assert (entry["outcome"], entry["attempts"]) == (final, 1)


def test_forced_outcome_overwrites_final() -> None:
    book = _record(ledger.empty(), [{"ts": TS, "outcome": ledger.ESCALATED, "attempts": 3}])
    _record(book, [{"ts": TS, "outcome": ledger.ANSWERED, "attempts": 4, "forced": True}])
    entry = ledger.lookup(book, CHANNEL, TS, dry_run=False)
    assert entry is not None
    assert (entry["outcome"], entry["attempts"]) == (ledger.ANSWERED, 4)
    assert "forced" not in entry


@pytest.mark.parametrize("open_outcome", sorted(ledger.OPEN))
def test_open_outcome_can_be_updated(open_outcome: str) -> None:
    book = _record(ledger.empty(), [{"ts": TS, "outcome": open_outcome, "attempts": 1}])
    _record(book, [{"ts": TS, "outcome": ledger.ANSWERED, "attempts": 2}])
    entry = ledger.lookup(book, CHANNEL, TS, dry_run=False)
    assert entry is not None
    assert entry["outcome"] == ledger.ANSWERED


def test_first_seen_is_kept_across_updates() -> None:
    book = _record(ledger.empty(), [{"ts": TS, "outcome": ledger.RETRYING}])
    _record(book, [{"ts": TS, "outcome": ledger.ANSWERED}], now=NOW + timedelta(hours=1))
    entry = ledger.lookup(book, CHANNEL, TS, dry_run=False)
    assert entry is not None
    assert entry["first_seen"] == NOW.isoformat(timespec="seconds")
    assert entry["updated"] == (NOW + timedelta(hours=1)).isoformat(timespec="seconds")


@pytest.mark.parametrize(
    ("days_ago", "outcome", "kept"),
    [
        pytest.param(31, ledger.ANSWERED, False, id="old-final-pruned"),
        pytest.param(31, ledger.IGNORED, False, id="old-ignored-pruned"),
        pytest.param(29, ledger.ANSWERED, True, id="recent-final-kept"),
        pytest.param(31, ledger.LINK_REQUESTED, True, id="old-link-request-kept"),
        pytest.param(90, ledger.RETRYING, True, id="old-retrying-kept"),
    ],
)
def test_retention(days_ago: float, outcome: str, kept: bool) -> None:
    ts = _ts(days_ago)
    book = _record(ledger.empty(), [{"ts": ts, "outcome": outcome}], now=NOW - timedelta(days=days_ago))
    _record(book, [], retention_days=30)
    assert (ledger.lookup(book, CHANNEL, ts, dry_run=False) is not None) is kept


def test_dumps_loads_round_trip() -> None:
    book = _record(ledger.empty(), [{"ts": TS, "outcome": ledger.ANSWERED}], newest_ts=TS)
    _record(book, [{"ts": TS, "outcome": ledger.LINK_REQUESTED}], dry_run=True)
    text = ledger.dumps(book)
    assert ledger.loads(text) == book
    assert json.loads(text)["version"] == ledger.LEDGER_VERSION


@pytest.mark.parametrize("text", [pytest.param(None, id="none"), pytest.param("", id="empty")])
def test_loads_unset_is_empty(text: str | None) -> None:
    assert ledger.loads(text) == ledger.empty()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[]", id="list"),
        pytest.param("{}", id="no-version"),
        pytest.param('{"version": 2, "channels": {}}', id="other-version"),
        pytest.param('"ledger"', id="string"),
        pytest.param("not json", id="garbage"),
    ],
)
def test_loads_rejects_non_ledger(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - json.JSONDecodeError is a ValueError too
        ledger.loads(text)
