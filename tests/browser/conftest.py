"""Fixtures for the browser test: a LocalExecutor deployment on the sandbox, and Debian's Chromium.

The deployment is the one the real-deployment tests use (``tests/deploy/conftest.py``), with three
changes so that only the runs the test triggers from the UI exist: no scheduled or asset-triggered
runs (``use_job_schedule`` off, no triggerer), and no automatic task retries, so a failed task stays
failed until the person clears it. Chromium is Debian's ``/usr/bin/chromium`` (``make browser-deps``);
Playwright drives it and never downloads a browser of its own.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import PROJECT_ROOT
from harness.testing.browser import TIMINGS, Screens
from harness.testing.live import FAST, MANUAL_CHANNEL, Live, started

CHROMIUM = Path("/usr/bin/chromium")
# Flags known to work on these machines: no GPU, no QUIC, no calls home (the network is closed).
# Playwright adds --headless and a fresh temporary --user-data-dir itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "browser"
UI_ONLY = {
    **FAST,
    "CREDIT_BOT_TASK_RETRIES": "0",
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
}


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright; skips with the reason when it cannot run."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: make install")
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed ({CHROMIUM}): run `make browser-deps` as root")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def live_ui(chromium_browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The sandbox and a LocalExecutor deployment serving the UI; settings in dry-run, as in production."""
    workdir = tmp_path_factory.mktemp("deployment-browser")
    settings = {"channel": MANUAL_CHANNEL, "dry_run": True}
    with started(
        "LocalExecutor", workdir, settings, UI_ONLY, triggerer=False, timings=TIMINGS, label="UI"
    ) as live:
        yield live


@pytest.fixture(scope="module")
def screens() -> Screens:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return Screens(ARTIFACTS)


@pytest.fixture(scope="module")
def page(chromium_browser: Any, live_ui: Live, screens: Screens) -> Iterator[Any]:
    """One browser tab for the whole module, signed in on the Simple auth manager's login page."""
    from playwright.sync_api import expect

    context = chromium_browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    deployment = live_ui.deployment
    tab.goto(deployment.api_url + "/")
    expect(tab.get_by_text("Sign into Airflow")).to_be_visible()
    tab.get_by_label("Username").fill(deployment.username)
    tab.get_by_label("Password").fill(deployment.password)
    screens.take(tab, "login")
    tab.get_by_role("button", name="Sign in").click()
    expect(tab.get_by_role("link", name="Dags").first).to_be_visible()
    yield tab
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep a screenshot of the page as it was when a browser test failed."""
    report = yield
    if report.when == "call" and report.failed and "page" in getattr(item, "funcargs", {}):
        tab = item.funcargs["page"]
        screens = item.funcargs.get("screens")
        if screens is not None and not tab.is_closed():
            screens.take(tab, f"FAILED-{item.name}")
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.section("browser test timings")
        for what, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{what}: {seconds:.1f} s")
