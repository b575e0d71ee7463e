"""``make bench`` in its quickest mode: it runs, and its JSON holds plausible counts (never timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.environment import HEAVY_MODULES, SCHEMA_VERSION
from bench.table import render

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "result.json"
    # A subprocess: the bench sets up its own AIRFLOW_HOME before it imports Airflow.
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--parse-runs", "1", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = out.with_suffix(".log")
    assert done.returncode == 0, done.stderr[-3000:] + (log.read_text()[-3000:] if log.exists() else "")
    assert "overhead ratio" in done.stdout
    return json.loads(out.read_text())


def test_result_has_every_section(results):
    assert {"schema", "meta", "parse", "idle_first", "idle", "backlog", "latency", "team_notebook"} <= set(
        results
    )
    assert results["schema"] == SCHEMA_VERSION
    assert results["meta"]["executor"] == "dag.test"
    assert list(results["backlog"]) == ["1"]


def test_team_notebook_is_answered_with_papermills_credit_or_skipped_with_the_reason(results):
    team = results["team_notebook"]
    if team.get("skipped"):  # the team's file is not on this machine: the reason names where it looked
        assert "team's notebook is not at" in team["skipped"]
        return
    assert team["state"] == "success", team.get("error")
    assert team["repeats"] == 1  # --quick
    assert team["replies_correct"] == 1
    assert team["credit"] in team["reply"]
    assert team["papermill_s"] > 0
    assert 0 < team["run_notebook_task_s"] < team["bot_run_s"]
    assert team["overhead_s"] == team["bot_run_s"] - team["papermill_s"]
    assert team["queries"] >= team["table_reads"] >= 1
    memory = team["memory"]
    assert 0 < memory["pss_per_in_flight_request_mb"] <= memory["rss_per_in_flight_request_mb"]
    assert 0 < memory["peak_pss_mb"] <= memory["peak_rss_mb"]


def test_parse_imports_nothing_heavy(results):
    parse = results["parse"]
    assert parse["runs"] == 1
    assert parse["median_s"] > 0
    assert "credit_bot" in parse["modules_top_level"]
    assert not set(parse["heavy"]) & HEAVY_MODULES


def test_idle_run_reads_history_once_and_starts_nothing_mapped(results):
    idle = results["idle"]
    assert idle["state"] == "success"
    # One read; auth.test is the run's scope check (it reads no message).
    assert idle["calls"] == {"slack": {"auth.test": 1, "conversations.history": 1}}
    assert idle["slack_calls"] == 2
    assert idle["looker_calls"] == 0
    assert idle["task_instances"]["mapped_started"] == 0


def test_one_request_is_answered_once_with_the_expected_amount(results):
    case = results["backlog"]["1"]
    assert case["state"] == "success"
    assert case["replies_correct"] == 1
    assert case["replies_total"] == 1
    assert case["dms"] == 0
    assert case["calls"]["slack"]["chat.postMessage"] == 1
    assert case["looker_calls"] >= 2  # at least the Look and its query's SQL
    assert case["task_instances"]["by_task"]["run_notebook"]["states"] == {"success": 1}
    assert case["floor"]["notebooks"] == 1
    assert case["overhead_ratio"] > 0
    assert case["ledger_bytes"] > 0
    assert case["latency_s"]["median"] > 0
    assert 0 < case["task_instances"]["busy_s"] <= case["wall_s"]  # tasks ran, within the run
    assert case["between_tasks_s"] >= 0


def test_latency_separates_measured_from_computed(results):
    latency = results["latency"]
    assert latency["wait_expected_s_computed"] == 300
    assert latency["wait_worst_s_computed"] == 600
    assert latency["processing_s_measured"] == results["backlog"]["1"]["latency_s"]["median"]


def test_compare_prints_deltas_against_an_older_result(results):
    older = json.loads(json.dumps(results))
    older["meta"]["commit"] = "0ld0ld0"
    older["idle"]["calls"]["slack"]["conversations.history"] = 2
    table = render(results, older)
    assert "against commit 0ld0ld0" in table
    [history_row] = [line for line in table.splitlines() if line.strip().startswith("conversations.history")]
    assert "(-50%)" in history_row  # one history read where there were two


def test_busy_seconds_is_the_union_of_running_intervals():
    from bench.measuring import busy_seconds

    tis = [
        {"start": 10.0, "end": 12.0},  # two slots overlap from 11 to 12
        {"start": 11.0, "end": 13.0},
        {"start": 15.0, "end": 16.0},  # nothing ran from 13 to 15
        {"start": 15.5, "end": 15.8},  # inside the one before
        {"start": None, "end": None},  # skipped: never ran
    ]
    assert busy_seconds(tis) == pytest.approx(4.0)
