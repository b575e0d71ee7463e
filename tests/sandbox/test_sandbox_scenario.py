"""Scenario loading: sql_file resolution, generated timestamps, and validation errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from harness.sandbox import Sandbox, Scenario, ScenarioError


def test_sql_file_is_read_relative_to_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "verify.sql").write_text("SELECT 1 -- Authy\n", encoding="utf-8")
    (tmp_path / "scenarios").mkdir()
    path = tmp_path / "scenarios" / "s.json"
    path.write_text(
        json.dumps(
            {"looker": {"queries": [{"id": 9, "model": "m", "view": "v", "sql_file": "../sql/verify.sql"}]}}
        ),
        encoding="utf-8",
    )
    scenario = Scenario.load(path)
    assert scenario.looker.queries[0]["sql"] == "SELECT 1 -- Authy\n"
    assert scenario.source == path


def test_messages_without_ts_get_increasing_timestamps() -> None:
    channel = {
        "id": "C0X",
        "messages": [
            {"ts": "1764000000.000100", "user": "U0A", "text": "explicit"},
            {"user": "U0A", "text": "generated 1", "replies": [{"user": "U0B", "text": "reply"}]},
            {"user": "U0A", "text": "generated 2"},
        ],
    }
    with Sandbox.from_dict({"slack": {"channels": [channel]}}) as sb:
        slack = WebClient(token=sb.slack_token, base_url=sb.slack_base_url)
        top = [m["ts"] for m in reversed(slack.conversations_history(channel="C0X")["messages"])]
        thread = [m["ts"] for m in slack.conversations_replies(channel="C0X", ts=top[1])["messages"]]

    assert top[0] == "1764000000.000100"
    stamps = [top[0], top[1], thread[1], top[2]]  # seeding order
    assert stamps == sorted(stamps, key=lambda ts: tuple(int(part) for part in ts.split(".")))
    assert len(set(stamps)) == 4
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"slack": {"tokn": "typo"}}, "unknown slack keys", id="unknown-key"),
        pytest.param({"looker": {"looks": [{"id": 1, "query_id": 404}]}}, "unknown query", id="look-ref"),
        pytest.param({"looker": {"queries": [{"slug": "x"}]}}, "without id", id="query-id"),
        pytest.param(
            {"looker": {"queries": [{"id": 1}], "dashboards": [{"id": 2, "elements": [{"look_id": 3}]}]}},
            "unknown look",
            id="dashboard-ref",
        ),
        pytest.param({"slack": {"channels": [{"name": "no-id"}]}}, "without id", id="channel-id"),
        pytest.param({"slack": {"max_page_size": 0}}, "max_page_size", id="page-size"),
    ],
)
def test_invalid_scenarios_are_rejected(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_dict(data)


def test_missing_sql_file_is_a_scenario_error(tmp_path: Path) -> None:
    data = {"looker": {"queries": [{"id": 1, "sql_file": "missing.sql"}]}}
    with pytest.raises(ScenarioError, match="cannot read sql_file"):
        Scenario.from_dict(data, base_dir=tmp_path)
