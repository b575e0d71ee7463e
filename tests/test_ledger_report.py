"""The ledger report: filtering, formatting, and the command run on a saved copy and on the Variable."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from credit_bot import ledger, ledger_report

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
HOUR = 3600.0
LINK = "https://acme.cloud.looker.com/looks/101"


def ts(hours_ago: float) -> str:
    return f"{NOW.timestamp() - hours_ago * HOUR:.6f}"


def sample() -> dict[str, Any]:
    return {
        "version": ledger.LEDGER_VERSION,
        "channels": {
            "C0CREDIT": {
                "live": {
                    "watermark": ts(1),
                    "requests": {
                        ts(1): {
                            "outcome": "answered",
                            "amount": "4948.8",
                            "attempts": 1,
                            "links": [LINK],
                            "last_error": None,
                            "reply_ts": ts(0.9),
                        },
                        ts(5): {
                            "outcome": "escalated",
                            "attempts": 3,
                            "links": [LINK, "https://acme.cloud.looker.com/x/qAbc"],
                            "last_error": "gave up after 3 attempts: notebook for "
                            + LINK
                            + ": kernel died\nTraceback (most recent call last): ...",
                        },
                        ts(30): {"outcome": "link_requested", "attempts": 1, "links": [], "last_error": None},
                    },
                },
                "dry_run": {
                    "watermark": ts(2),
                    "requests": {
                        ts(2): {"outcome": "answered", "amount": "1283.00", "attempts": 1, "links": [LINK]},
                    },
                },
            },
            "C0OTHER": {
                "live": {
                    "watermark": ts(3),
                    "requests": {ts(3): {"outcome": "retrying", "attempts": 2, "last_error": "Looker 503"}},
                }
            },
        },
    }


def select(**filters: Any) -> list[tuple[str, str, str]]:
    rows = ledger_report.select(sample(), now=NOW, **filters)
    return [(row["channel"], row["mode"], row["outcome"]) for row in rows]


def test_rows_are_newest_first_across_channels_and_modes() -> None:
    assert select() == [
        ("C0CREDIT", "live", "answered"),
        ("C0CREDIT", "dry_run", "answered"),
        ("C0OTHER", "live", "retrying"),
        ("C0CREDIT", "live", "escalated"),
        ("C0CREDIT", "live", "link_requested"),
    ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({"channel": "C0OTHER"}, [("C0OTHER", "live", "retrying")], id="channel"),
        pytest.param({"mode": "dry_run"}, [("C0CREDIT", "dry_run", "answered")], id="mode"),
        pytest.param(
            {"outcome": "answered"},
            [("C0CREDIT", "live", "answered"), ("C0CREDIT", "dry_run", "answered")],
            id="outcome",
        ),
        pytest.param(
            {"since_hours": 4},
            [
                ("C0CREDIT", "live", "answered"),
                ("C0CREDIT", "dry_run", "answered"),
                ("C0OTHER", "live", "retrying"),
            ],
            id="since",
        ),
        pytest.param({"limit": 1}, [("C0CREDIT", "live", "answered")], id="limit"),
        pytest.param(
            {"mode": "live", "channel": "C0CREDIT", "since_hours": 24},
            [("C0CREDIT", "live", "answered"), ("C0CREDIT", "live", "escalated")],
            id="combined",
        ),
        pytest.param({"channel": "C0NONE"}, [], id="nothing"),
    ],
)
def test_filters(filters: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    assert select(**filters) == expected


def test_rows_carry_the_entry_and_its_time() -> None:
    [row] = ledger_report.select(sample(), mode="live", outcome="answered", now=NOW)
    assert row["ts"] == ts(1)
    assert row["time"] == "2026-01-02T11:00:00+00:00"
    assert row["amount"] == "4948.8"
    assert row["links"] == [LINK]


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="live, dry_run or all"):
        ledger_report.select(sample(), mode="both")


def test_table_is_aligned_and_formats_amounts_and_errors() -> None:
    text = ledger_report.table(ledger_report.select(sample(), channel="C0CREDIT", mode="live", now=NOW))
    header, answered, escalated, asked = text.splitlines()

    assert re.split(r"\s{2,}", header) == [title for _, title in ledger_report.COLUMNS]
    assert ledger_report.COLUMNS[-1][1] == "LOOKER LINKS"  # last: full, clickable, unpadded
    # Columns line up: every value starts where its header does.
    for line, value in ((answered, "answered"), (escalated, "escalated"), (asked, "link_requested")):
        assert line.index(value) == header.index("OUTCOME")
    assert answered.startswith("2026-01-02 11:00:00  C0CREDIT  live  " + ts(1))
    # Amounts are right-aligned dollars; the answered one ends with its Looker link.
    assert "$4,948.80" in answered
    assert answered.index("$4,948.80") + len("$4,948.80") == header.index("AMOUNT") + len("AMOUNT")
    assert answered.endswith(LINK)
    # The error is cut to one short line; both links are listed in full.
    assert "gave up after 3 attempts: notebook for https://acme.cloud.l…" in escalated
    assert "Traceback" not in escalated
    assert escalated.endswith(f"{LINK} https://acme.cloud.looker.com/x/qAbc")
    assert asked.split()[-2:] == ["link_requested", "1"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("4948.8", "$4,948.80", id="decimal-text"),
        pytest.param("0", "$0.00", id="zero"),
        pytest.param(None, "", id="none"),
        pytest.param("n/a", "n/a", id="not-a-number-shown-as-is"),
    ],
)
def test_amount_text(value: Any, expected: str) -> None:
    assert ledger_report.amount_text(value) == expected


def test_empty_ledger_says_so() -> None:
    assert ledger_report.table(ledger_report.select(ledger.empty())) == "no requests match"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(json.dumps(sample()), id="variable-value"),
        pytest.param(json.dumps({"credit_bot_ledger": json.dumps(sample())}), id="variables-export"),
        pytest.param(json.dumps({"credit_bot_ledger": sample()}), id="export-as-json"),
    ],
)
def test_parse_accepts_the_value_and_airflow_exports(text: str) -> None:
    assert ledger_report.parse(text) == sample()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{oops", "not JSON", id="not-json"),
        pytest.param('{"version": 99, "channels": {}}', "not a CreditBot ledger", id="wrong-version"),
    ],
)
def test_parse_refuses_what_is_not_a_ledger(text: str, message: str) -> None:
    with pytest.raises(ledger_report.LedgerReadError, match=message):
        ledger_report.parse(text)


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "credit_bot.ledger_report", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "plugins")},
        timeout=120,
    )


def test_command_on_a_saved_copy(tmp_path: Path) -> None:
    saved = tmp_path / "l.json"
    saved.write_text(json.dumps(sample()) + "\n")

    done = run_module("--file", str(saved), "--mode", "live", "--outcome", "escalated")
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    assert header.startswith("TIME (UTC)")
    assert row.split()[2:6] == ["C0CREDIT", "live", ts(5), "escalated"]
    assert row.endswith(f"{LINK} https://acme.cloud.looker.com/x/qAbc")

    as_json = run_module("--file", str(saved), "--json", "--limit", "2")
    assert [r["outcome"] for r in json.loads(as_json.stdout)] == ["answered", "answered"]

    missing = run_module("--file", str(tmp_path / "nope.json"))
    assert missing.returncode == 1
    assert "cannot read the ledger from" in missing.stderr


def test_command_reads_the_variable_through_airflow(capsys: pytest.CaptureFixture[str]) -> None:
    from airflow.models.variable import Variable

    Variable.set(ledger.LEDGER_VARIABLE, ledger.dumps(sample()))
    try:
        assert ledger_report.main(["--channel", "C0OTHER"]) == 0
    finally:
        Variable.delete(ledger.LEDGER_VARIABLE)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[1].split()[2:8] == ["C0OTHER", "live", ts(3), "retrying", "2", "Looker"]

    assert ledger_report.main([]) == 0  # no Variable yet: nothing recorded
    assert capsys.readouterr().out.strip() == "no requests match"
