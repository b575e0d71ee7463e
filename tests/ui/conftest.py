"""UI plugin test fixtures: ledger, settings and an executed notebook, as a deployment supplies them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from credit_bot.ledger import LEDGER_VARIABLE
from credit_bot.notebooks import RESULT_MIME
from credit_bot.settings import SETTINGS_VARIABLE

CHANNEL = "C0CREDITTEST"
RUN_DIR = "manual__2026-12-01T10_00_00_00_00"
RUN_ID = "manual__2026-12-01T10:00:00+00:00"
NOW_TS = 1796200000  # the ledger's newest request; tests pass "now" near it
WAREHOUSE_PASSWORD = "fake-warehouse-pw-7Qz"


def executed_notebook(*, secret: str | None = None) -> str:
    """A small executed notebook with what a real one holds: markdown, a table, a plot, the result."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Verify credit\n<script>alert('md')</script>per-mode table below"),
        nbformat.v4.new_code_cell(
            "looker = 'SELECT …'",
            outputs=[nbformat.v4.new_output("stream", name="stdout", text="connected as analyst\n")],
        ),
        nbformat.v4.new_code_cell(
            "per_mode",
            execution_count=2,
            outputs=[
                nbformat.v4.new_output(
                    "execute_result",
                    data={
                        "text/html": (
                            '<table class="dataframe"><tr><th>mode</th><th>credit</th></tr>'
                            "<tr><td>basic</td><td>812.40</td></tr></table>"
                            "<script>alert('out')</script><img src=x onerror=\"alert('img')\">"
                            "<a href=\"javascript:alert('a')\">x</a>"
                        ),
                        "text/plain": "  mode  credit\n0 basic  812.40",
                    },
                    execution_count=2,
                ),
                nbformat.v4.new_output(
                    "display_data", data={"application/javascript": "alert('js')", "text/plain": "<js>"}
                ),
                nbformat.v4.new_output(
                    "display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "plot"}
                ),
            ],
        ),
        nbformat.v4.new_code_cell(
            "print(credit_amount)",
            outputs=[
                nbformat.v4.new_output(
                    "stream", name="stdout", text=f"credit_amount = 4948.80 {secret or ''}\n"
                ),
                nbformat.v4.new_output(  # what CreditBot's read-out cell leaves
                    "display_data",
                    data={
                        RESULT_MIME: {
                            "has_credit_amount": True,
                            "credit_amount": {"type": "float", "value": "4948.8"},
                        }
                    },
                ),
            ],
        ),
    ]
    return nbformat.writes(nb)


def ledger_book(entries: list[dict[str, Any]]) -> dict[str, Any]:
    requests = {e["ts"]: {k: v for k, v in e.items() if k not in ("ts", "mode")} for e in entries}
    live = {ts: r for ts, r in requests.items() if not r.get("dry_run")}
    dry = {ts: r for ts, r in requests.items() if r.get("dry_run")}
    return {
        "version": 1,
        "channels": {
            CHANNEL: {
                "live": {"watermark": None, "requests": live},
                "dry_run": {"watermark": None, "requests": dry},
            }
        },
    }


def entry(ts: float, outcome: str, **fields: Any) -> dict[str, Any]:
    base = {
        "ts": f"{ts:.6f}",
        "outcome": outcome,
        "dry_run": False,
        "attempts": 1,
        "requester": "U0REQUESTER",
        "snippet": "Credit request acme Fraud spend: $20,902.40",
        "links": [],
        "last_error": None,
        "run_id": RUN_ID,
        "map_index": 0,
    }
    return {**base, **fields}


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    return folder


@pytest.fixture
def deployment_env(monkeypatch: pytest.MonkeyPatch, output_dir: Path):
    """Settings, ledger and the warehouse connection as environment variables; returns a ledger setter."""
    settings = {"output_dir": str(output_dir), "looker_hosts": ["credit-sandbox.cloud.looker.com"]}
    monkeypatch.setenv(f"AIRFLOW_VAR_{SETTINGS_VARIABLE.upper()}", json.dumps(settings))
    monkeypatch.setenv(
        "AIRFLOW_CONN_CREDIT_WAREHOUSE_DEFAULT",
        json.dumps({"conn_type": "trino", "host": "warehouse.invalid", "password": WAREHOUSE_PASSWORD}),
    )
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_API_DEFAULT", raising=False)

    def set_ledger(entries: list[dict[str, Any]] | str) -> None:
        text = entries if isinstance(entries, str) else json.dumps(ledger_book(entries))
        monkeypatch.setenv(f"AIRFLOW_VAR_{LEDGER_VARIABLE.upper()}", text)

    return set_ledger


def write_notebook(output_dir: Path, name: str, text: str | None = None, run_dir: str = RUN_DIR) -> str:
    folder = output_dir / run_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text if text is not None else executed_notebook())
    return str(path)
