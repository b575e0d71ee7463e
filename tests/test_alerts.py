"""Failure alerts: the operator DM that says CreditBot itself failed, sent through the sandbox."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest

from credit_bot import alerts
from credit_bot.settings import SETTINGS_VARIABLE, SettingsError
from harness.local import DEMO_OPERATOR, LocalStack, local_stack

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_ENV = f"AIRFLOW_VAR_{SETTINGS_VARIABLE.upper()}"
RUN_ID = "scheduled__2026-01-02T10:00:00+00:00"
FAKE_TOKEN = "xoxb-000-fake-token"


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    monkeypatch.delenv(alerts.ALERT_CHANNEL_ENV, raising=False)
    with local_stack(tmp_path / "notebooks") as running:
        yield running


def task_context(
    exception: BaseException | None = None, task_id: str = "fetch_requests", **params: Any
) -> dict[str, Any]:
    """What Airflow hands a failure callback, trimmed to what the alert reads."""
    ti = SimpleNamespace(
        dag_id="credit_bot",
        task_id=task_id,
        run_id=RUN_ID,
        map_index=-1,
        try_number=1,
        log_url=f"http://airflow.example/dags/credit_bot/runs/{RUN_ID}/tasks/{task_id}?try_number=1",
    )
    context: dict[str, Any] = {
        "ti": ti,
        "task_instance": ti,
        "run_id": RUN_ID,
        "params": {"channel": None, "message_ts": None, "dry_run": None, "force": False, **params},
    }
    if exception is None:
        context["reason"] = "task_failure"  # a DAG-level callback: no exception in its context
    else:
        context["exception"] = exception
    return context


def dm_texts(stack: LocalStack, user: str = DEMO_OPERATOR) -> list[str]:
    return [dm["text"] for dm in stack.sandbox.dms(user)]


def test_task_failure_reaches_the_operator_by_dm(stack: LocalStack) -> None:
    error = SettingsError(
        f"'looker_hosts' is empty <!channel> token={FAKE_TOKEN} {{{{ conn.slack_api_default.password }}}}\n"
        "second line of the traceback"
    )

    assert alerts.on_task_failure(task_context(error)) is None

    [text] = dm_texts(stack)
    assert text.startswith(":rotating_light: CreditBot failed: DAG credit_bot, run scheduled__2026-01-02")
    assert ", task fetch_requests\n" in text
    assert "• Error: SettingsError: 'looker_hosts' is empty &lt;!channel&gt; token=***" in text
    assert "{{ conn.slack_api_default.password }}" in text  # sent as text, never rendered
    assert FAKE_TOKEN not in text
    assert "second line" not in text
    assert "• Airflow log: http://airflow.example/dags/credit_bot/runs/" in text
    assert "tasks/fetch_requests?try_number=1" in text
    assert "• Next: the next scheduled run tries again; the ledger is unchanged" in text
    assert [c["params"]["channel"] for c in stack.sandbox.calls(api="slack", method="chat.postMessage")] == [
        DEMO_OPERATOR
    ]


def test_dag_failure_names_the_task_and_its_log(stack: LocalStack) -> None:
    alerts.on_dag_failure(task_context(task_id="record_ledger"))

    [text] = dm_texts(stack)
    assert "• Error: task record_ledger failed; the error is in its log" in text
    assert "tasks/record_ledger?try_number=1" in text


def test_report_failures_says_the_ledger_was_written(stack: LocalStack) -> None:
    alerts.on_dag_failure(task_context(task_id=alerts.REPORT_TASK))

    [text] = dm_texts(stack)
    assert f"• Error: {alerts.REPORT_ERROR}" in text
    assert "• Next: the ledger has this run's outcomes" in text
    assert "unchanged" not in text


def test_the_cause_is_the_error_creditbot_raised_not_airflows_wrapper(stack: LocalStack) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    try:
        try:
            raise SettingsError("product 'verify': notebook x.ipynb cannot run under CreditBot: cell 3\nmore")
        except SettingsError as exc:
            raise AirflowFailException(f"SettingsError: {exc}") from exc
    except AirflowFailException as exc:
        wrapped = exc

    assert (
        alerts.cause(wrapped)
        == "SettingsError: product 'verify': notebook x.ipynb cannot run under CreditBot: cell 3"
    )
    # Raised without a cause (``from None``): its message alone; any other error: type and message.
    assert (
        alerts.cause(AirflowFailException("Slack answered 'not_in_channel'"))
        == "Slack answered 'not_in_channel'"
    )
    assert alerts.cause(RuntimeError("metadata DB unavailable")) == "RuntimeError: metadata DB unavailable"


def test_a_run_failing_only_for_what_the_request_dms_told_alerts_nobody(stack: LocalStack) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    told = AirflowFailException("1 request task(s) failed: run_notebook[0]")
    told.__cause__ = alerts.AlreadyTold("1 request task(s) failed: run_notebook[0]")

    alerts.on_task_failure(task_context(told, task_id=alerts.REPORT_TASK))

    assert dm_texts(stack) == []
    assert stack.sandbox.calls(api="slack") == []


def test_the_dag_callback_is_silent_for_a_task_that_alerts_on_its_own(stack: LocalStack) -> None:
    own = task_context(task_id="fetch_requests")
    own["ti"].task = SimpleNamespace(on_failure_callback=[alerts.on_task_failure])
    serialized = task_context(task_id="report_failures")  # dag.test() hands the serialized task
    serialized["ti"].task = SimpleNamespace(on_failure_callback=None, has_on_failure_callback=True)
    silent = task_context(task_id="run_notebook")  # a request task: no alert of its own
    silent["ti"].task = SimpleNamespace(on_failure_callback=None, has_on_failure_callback=False)

    alerts.on_dag_failure(own)
    alerts.on_dag_failure(serialized)
    assert dm_texts(stack) == []

    alerts.on_dag_failure(silent)
    [text] = dm_texts(stack)
    assert "• Error: task run_notebook failed; the error is in its log" in text


def test_a_deadlocked_run_alerts_even_at_a_task_that_alerts_on_its_own(stack: LocalStack) -> None:
    # Only a task *failure* is that task's to tell; a deadlock is not.
    context = {**task_context(task_id="report_failures"), "reason": "all_tasks_deadlocked"}
    context["ti"].task = SimpleNamespace(on_failure_callback=[alerts.on_task_failure])

    alerts.on_dag_failure(context)

    [text] = dm_texts(stack)
    assert "CreditBot failed" in text


@pytest.mark.parametrize(
    ("settings", "env", "to"),
    [
        pytest.param(
            {"operators": ["U0NOSUCHUSER"], "alert_channel": "C0PRODMEMOS"}, None, "C0PRODMEMOS", id="setting"
        ),
        pytest.param({"operators": ["U0NOSUCHUSER"]}, "C0PRODMEMOS", "C0PRODMEMOS", id="env"),
        pytest.param(
            {"operators": [], "alert_channel": "C0PRODMEMOS"}, None, "C0PRODMEMOS", id="no-operators"
        ),
    ],
)
def test_alert_goes_to_the_alert_channel_when_no_operator_can_be_dmed(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, settings: dict, env: str | None, to: str
) -> None:
    stack.use_settings(**settings)
    if env:
        monkeypatch.setenv(alerts.ALERT_CHANNEL_ENV, env)

    assert alerts.notify_failure(task_context(RuntimeError("boom"))) == [to]

    [post] = stack.sandbox.posts(to)
    assert "CreditBot failed" in post["text"]


def test_minimal_dag_context_links_the_run(stack: LocalStack) -> None:
    # What the dag-processor passes when the failed task is gone from the DAG: dag, run_id, reason.
    alerts.on_dag_failure(
        {"dag": SimpleNamespace(dag_id="credit_bot"), "run_id": RUN_ID, "reason": "all_tasks_deadlocked"}
    )

    [text] = dm_texts(stack)
    assert "• Error: the run failed (all_tasks_deadlocked); the error is in its log" in text
    assert "/dags/credit_bot/runs/scheduled__2026-01-02T10%3A00%3A00%2B00%3A00\n" in text


@pytest.mark.parametrize(
    ("setting", "param"),
    [
        pytest.param(True, None, id="dry-run-setting"),
        pytest.param(False, True, id="dry-run-param-of-a-manual-run"),
    ],
)
def test_dry_run_only_logs(
    stack: LocalStack, caplog: pytest.LogCaptureFixture, setting: bool, param: bool | None
) -> None:
    stack.use_settings(dry_run=setting)

    with caplog.at_level(logging.WARNING, logger=alerts.__name__):
        sent = alerts.notify_failure(task_context(RuntimeError("boom"), dry_run=param))

    assert sent == []
    assert stack.sandbox.calls(api="slack") == []
    assert "DRY RUN: would send this failure alert to U0OPERATOR" in caplog.text
    assert "RuntimeError: boom" in caplog.text


def test_live_param_overrides_a_dry_run_setting(stack: LocalStack) -> None:
    stack.use_settings(dry_run=True)

    assert alerts.notify_failure(task_context(RuntimeError("boom"), dry_run=False)) == [DEMO_OPERATOR]
    assert len(dm_texts(stack)) == 1


@pytest.mark.parametrize(
    ("settings_value", "fallback", "expected"),
    [
        pytest.param(None, None, [], id="missing-no-fallback"),
        pytest.param(None, DEMO_OPERATOR, [DEMO_OPERATOR], id="missing-fallback"),
        pytest.param("{not json", DEMO_OPERATOR, [DEMO_OPERATOR], id="bad-json-fallback"),
        pytest.param('{"operators": []}', None, [], id="no-operators-no-fallback"),
        # Invalid settings (no looker_hosts) still name the operators: they hear about it.
        pytest.param('{"dry_run": false, "operators": ["U0OPERATOR"]}', None, [DEMO_OPERATOR], id="invalid"),
    ],
)
def test_unreadable_settings_fall_back_without_raising(
    stack: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    settings_value: str | None,
    fallback: str | None,
    expected: list[str],
) -> None:
    if settings_value is None:
        monkeypatch.delenv(SETTINGS_ENV)
    else:
        monkeypatch.setenv(SETTINGS_ENV, settings_value)
    if fallback:
        monkeypatch.setenv(alerts.ALERT_CHANNEL_ENV, fallback)

    with caplog.at_level(logging.ERROR, logger=alerts.__name__):
        sent = alerts.notify_failure(task_context(SettingsError("bad settings")))

    assert sent == expected
    assert len(dm_texts(stack)) == len(expected)
    if not expected:
        assert "CreditBot failure alert (no operators" in caplog.text
        assert "SettingsError: bad settings" in caplog.text


def test_slack_failure_is_logged_not_raised(stack: LocalStack, caplog: pytest.LogCaptureFixture) -> None:
    stack.sandbox.inject("slack", "chat.postMessage", "slack_error", error="channel_not_found")

    with caplog.at_level(logging.ERROR, logger=alerts.__name__):
        assert alerts.notify_failure(task_context(RuntimeError("boom"))) == []

    assert "could not send the failure alert to U0OPERATOR" in caplog.text
    assert dm_texts(stack) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"auth failed for {FAKE_TOKEN}", "auth failed for ***", id="slack-token"),
        pytest.param("xapp-1-A0-fake connect", "*** connect", id="app-token"),
        pytest.param("GET https://svc:hunter2@db.example/x", "GET https://***@db.example/x", id="url"),
        pytest.param("client_secret=abc123 rejected", "client_secret=*** rejected", id="secret"),
        pytest.param("Authorization: Bearer abc.def", "Authorization: Bearer ***", id="bearer"),
    ],
)
def test_redact_masks_token_shaped_text(text: str, expected: str) -> None:
    assert alerts.redact(text) == expected


def test_import_is_cheap_at_parse_time() -> None:
    # The DAG file imports this module: no provider, slack_sdk or Airflow until a callback runs.
    code = (
        "import sys, credit_bot.alerts; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'slack_sdk')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "plugins")},
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.integration
def test_a_failed_run_of_the_dag_alerts_the_operator(stack: LocalStack) -> None:
    """The real DAG with the callback wired, run by dag.test() (which runs DAG callbacks in-process)."""
    from harness.local import load_dag

    dag = load_dag()
    # What declaring on_failure_callback in dags/credit_bot.py sets (the flag is computed at init).
    dag.on_failure_callback = [alerts.on_dag_failure]
    dag.has_on_failure_callback = True
    stack.use_settings(looker_hosts=[])  # fetch_requests fails on the settings: the bot cannot run at all

    params = {"channel": None, "message_ts": None, "dry_run": None, "force": False}
    assert str(dag.test(run_conf=params).state) == "failed"

    # One alert: fetch_requests' own, from its task with the exception (record_ledger skips, the
    # leaf is upstream-failed); the DAG callback, handed that task, adds none.
    [text] = dm_texts(stack)
    named = re.search(
        r"^:rotating_light: CreditBot failed: DAG credit_bot, run (manual__\S+), task (\w+)$", text, re.M
    )
    assert named, text
    run_id, task_id = named.groups()
    assert task_id == "fetch_requests"
    # The cause in one line: the SettingsError, not Airflow's wrapper nor "the error is in its log".
    assert "• Error: SettingsError: 'looker_hosts' is empty: list the Looker host(s)" in text
    assert "AirflowFailException" not in text
    assert f"/dags/credit_bot/runs/{quote(run_id)}/tasks/fetch_requests?try_number=1" in text
    assert "record_ledger" not in text
