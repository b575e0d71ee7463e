"""The plugin as Airflow registers it: its name, app and URL prefix, its nav view and its extra link."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from credit_bot.ui import urls
from credit_bot.ui.links import ExecutedNotebookLink

ROOT = Path(__file__).resolve().parents[2]
OUTPUT_NB = "/data/notebooks/manual__2026-12-01T10_00_00_00_00/C0CREDITTEST-1796190000.000100-0.ipynb"


def test_plugin_class() -> None:
    from credit_bot_plugin import CreditBotPlugin

    assert CreditBotPlugin.name == "credit_bot"
    [app] = CreditBotPlugin.fastapi_apps
    assert app["url_prefix"] == "/credit-bot" == urls.URL_PREFIX
    assert app["name"] == "credit_bot"
    [view] = CreditBotPlugin.external_views
    assert view["name"] == "CreditBot"
    assert view["url_route"] == "credit-bot"
    assert view["destination"] == "nav"
    assert view["href"].endswith("/credit-bot/")
    assert [link.name for link in CreditBotPlugin.operator_extra_links] == [
        "Executed notebook",
        "CreditBot request",
    ]


def test_loading_the_plugin_does_not_build_the_app() -> None:
    """Every task process loads the plugins (for listeners and macros); only the API server reads
    ``fastapi_apps``. Loading them as a task does must not import FastAPI or the API server's
    security module (1.2 s a task before), and the app is built once, when first read."""
    script = """
import sys
from airflow.sdk.listener import get_listener_manager
from airflow.sdk.plugins_manager import _get_plugins, integrate_macros_plugins

get_listener_manager()
integrate_macros_plugins()
[plugin] = [p for p in _get_plugins()[0] if p.name == "credit_bot"]
heavy = sorted(m for m in ("fastapi", "airflow.api_fastapi.core_api.security") if m in sys.modules)
apps = plugin.fastapi_apps
print(heavy, type(apps[0]["app"]).__name__, apps is plugin.fastapi_apps)
"""
    env = {
        **os.environ,
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, env=env
    ).stdout
    assert out.strip().splitlines()[-1] == "[] FastAPI True"


def test_airflow_plugins_lists_the_app_the_view_and_the_link() -> None:
    """What ``airflow plugins`` prints, from the plugins folder as a deployment loads it."""
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins")}
    out = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "plugins", "--output", "json"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    plugins = {p["name"]: p for p in json.loads(out[out.index("[") :])}
    assert set(plugins) == {"credit_bot"}  # the credit_bot package itself is not exec'd as plugins
    plugin = plugins["credit_bot"]
    assert plugin["source"].endswith("credit_bot_plugin.py")
    assert "'url_prefix': '/credit-bot'" in str(plugin["fastapi_apps"])
    assert "'url_route': 'credit-bot'" in str(plugin["external_views"])
    assert "ExecutedNotebookLink" in str(plugin["operator_extra_links"])
    assert "RequestEntryLink" in str(plugin["operator_extra_links"])


def test_the_tasks_carry_the_links() -> None:
    from harness.local import load_dag

    dag = load_dag()
    assert [link.name for link in dag.get_task("run_notebook").operator_extra_links] == ["Executed notebook"]
    assert [link.name for link in dag.get_task("post_results").operator_extra_links] == ["CreditBot request"]


@pytest.mark.parametrize(
    ("op_kwargs", "expected"),
    [
        pytest.param(
            {"request": {"channel": "C0CREDITTEST", "ts": "1796190000.000100"}},
            "https://airflow.example.com/credit-bot/?request=C0CREDITTEST%3A1796190000.000100",
            id="the-request",
        ),
        pytest.param({"request": "{{ not rendered }}"}, "", id="unrendered"),
        pytest.param({}, "", id="no-request"),
    ],
)
def test_request_entry_link(monkeypatch, op_kwargs, expected) -> None:
    from types import SimpleNamespace

    from credit_bot.ui.links import RequestEntryLink

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")
    operator = SimpleNamespace(op_kwargs=op_kwargs)
    assert RequestEntryLink().get_link(operator, ti_key=None) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("base_url", "output_nb", "expected"),
    [
        pytest.param(
            "https://airflow.example.com",
            OUTPUT_NB,
            "https://airflow.example.com/credit-bot/notebooks/manual__2026-12-01T10_00_00_00_00/"
            "C0CREDITTEST-1796190000.000100-0.ipynb",
            id="full-base-url",
        ),
        pytest.param(
            "https://example.com/airflow/",
            OUTPUT_NB,
            "https://example.com/airflow/credit-bot/notebooks/manual__2026-12-01T10_00_00_00_00/"
            "C0CREDITTEST-1796190000.000100-0.ipynb",
            id="base-url-with-a-path",
        ),
        pytest.param(
            None,
            "s3://bucket/notebooks/run_1/C0CREDITTEST-1796190000.000100-1.ipynb",
            "/credit-bot/notebooks/run_1/C0CREDITTEST-1796190000.000100-1.ipynb",
            id="no-base-url-object-storage",
        ),
        pytest.param("https://airflow.example.com", "/etc/passwd", "", id="not-an-executed-notebook"),
        pytest.param("https://airflow.example.com", None, "", id="no-output"),
    ],
)
def test_executed_notebook_link(monkeypatch, base_url, output_nb, expected) -> None:
    from types import SimpleNamespace

    if base_url:
        monkeypatch.setenv("AIRFLOW__API__BASE_URL", base_url)
    else:
        monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    operator = SimpleNamespace(jobs=[{"output_nb": output_nb}])
    assert ExecutedNotebookLink().get_link(operator, ti_key=None) == expected  # type: ignore[arg-type]
