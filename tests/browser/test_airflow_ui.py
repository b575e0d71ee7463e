"""The Airflow UI path an operator takes, in headless Chromium against a real deployment on the sandbox.

Sign in, open ``credit_bot``, read the trigger form (every param with its title, description and
default), paste a Slack permalink, trigger, watch the run succeed, find the request's mapped
``post_results`` by its name and read the reply in its log; then, with Looker down, see a request's
``resolve`` fail, clear it once Looker is back, and see the retry answer the request exactly once.
Each step leaves a screenshot in ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import quote, unquote

import pytest

from harness.testing.browser import TIMINGS, Screens
from harness.testing.live import DAG_ID, HOST, MANUAL_CHANNEL, Live

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PARAMS = ("channel", "message_ts", "dry_run", "force")
ACME = f"Credit request acme\nFraud spend: <{HOST}/looks/101|$20,902.40>"
ACME_REPLY = "Approved, $10,226.35, exceptions"
BOLT = f"Credit memo for bolt: <{HOST}/explore/billing/counters_by_billable_item?qid=qBolt01|$2,389.84>"
BOLT_REPLY = "Approved, $1,283.00, exceptions"
RUN_TIMEOUT_MS = 240_000
AS_CONFIGURED = "As configured (the 'dry_run' setting)"
LIVE = "Live — post replies"


def test_trigger_form_shows_every_param_with_its_docs_and_default(
    page: Any, live_ui: Live, screens: Screens
) -> None:
    from playwright.sync_api import expect

    declared = live_ui.deployment.api.request("GET", f"/dags/{DAG_ID}/details")["params"]
    assert set(declared) == set(PARAMS)

    page.get_by_role("link", name="Dags").first.click()
    page.get_by_role("link", name=DAG_ID, exact=True).first.click()
    expect(page.get_by_role("heading", name=DAG_ID, exact=True).first).to_be_visible()
    screens.take(page, "dag-page")
    page.get_by_role("button", name="Dag Docs").click()
    docs = page.get_by_role("dialog")
    expect(docs.get_by_text("Dry-run is on by default")).to_be_visible()
    screens.take(page, "dag-docs")
    docs.get_by_role("button", name="Close").click()

    form = _open_trigger_form(page)
    for key, param in declared.items():
        field = form.locator(f"[name=element_{key}]")
        expect(field).to_be_attached()
        row = form.get_by_role("group").filter(has=page.locator(f"[name=element_{key}]"))
        expect(row).to_be_visible()
        expect(row).to_contain_text(param["schema"]["title"])
        expect(row).to_contain_text(param["description"])
        if param["schema"].get("enum"):  # a labelled choice: the default's label is what shows
            shown = param["schema"]["values_display"][
                "null" if param["value"] is None else str(param["value"])
            ]
            expect(row).to_contain_text(shown)
        elif "boolean" in param["schema"]["type"] and "string" not in param["schema"]["type"]:
            assert field.is_checked() is bool(param["value"]), key
        else:
            expect(field).to_have_value(param["value"] or "")
    screens.take(page, "trigger-form")
    # The JSON the form will send: exactly the declared defaults.
    assert _form_conf(form) == {key: param["value"] for key, param in declared.items()}
    screens.take(page, "trigger-form-conf")
    form.get_by_role("button", name="Close").click()


def test_pasted_permalink_run_answers_and_its_log_shows_the_reply(
    page: Any, live_ui: Live, screens: Screens
) -> None:
    from playwright.sync_api import expect

    ts = live_ui.post(MANUAL_CHANNEL, ACME)
    started = time.monotonic()
    run_id = _trigger_for_permalink(page, live_ui, screens, _permalink(live_ui, ts), "answer")
    _expect_run_state(page, run_id, "Success")
    TIMINGS["trigger in the form -> run shown successful"] = time.monotonic() - started
    screens.take(page, "answer-run-succeeded")
    assert live_ui.thread(MANUAL_CHANNEL, ts) == [ACME_REPLY]

    _open_mapped_task(page, live_ui, run_id, "post_results", ts)
    expect(page.get_by_text(ACME_REPLY).first).to_be_visible()
    screens.take(page, "answer-post-results-log")


def test_cleared_failed_task_is_retried_to_exactly_one_reply(
    page: Any, live_ui: Live, screens: Screens
) -> None:
    from playwright.sync_api import expect

    sandbox, api = live_ui.stack.sandbox, live_ui.deployment.api
    ts = live_ui.post(MANUAL_CHANNEL, BOLT)
    sandbox.inject("looker", "*", "server_error", times=10_000)  # Looker is down until cleared below
    try:
        run_id = _trigger_for_permalink(page, live_ui, screens, _permalink(live_ui, ts), "retry")
        # The run ends either way; what matters is the request's failed task instance.
        _expect_run_state(page, run_id, "Success", "Failed")
    finally:
        sandbox.clear_faults()
    failed = _task_row(page, "resolve", ts)
    expect(failed.get_by_test_id("state-badge")).to_have_text("Failed")
    screens.take(page, "retry-resolve-failed")
    assert live_ui.thread(MANUAL_CHANNEL, ts) == []

    _open_mapped_task(page, live_ui, run_id, "resolve", ts)
    expect(page.get_by_text("LookerUnavailable").first).to_be_visible()
    screens.take(page, "retry-resolve-log")
    page.get_by_role("button", name=re.compile(r"to clear$")).click()
    clear = page.get_by_role("dialog")
    expect(clear.get_by_role("heading", name=re.compile(r"^Clear Task Instance: resolve"))).to_be_visible()
    expect(clear.get_by_test_id("table-cell-task_id").filter(has_text="post_results")).to_be_visible()
    screens.take(page, "retry-clear-dialog")
    clear.get_by_role("button", name="Confirm").click()
    expect(clear).to_be_hidden()

    page.goto(_run_url(live_ui, run_id))
    for task_id in ("resolve", "post_results"):
        row = _task_row(page, task_id, ts)
        expect(row.get_by_test_id("state-badge")).to_have_text("Success", timeout=RUN_TIMEOUT_MS)
        expect(row.get_by_test_id("table-cell-try_number")).to_have_text("2")
    page.reload()  # what a person does to be sure: every panel (the run's note too) fetched afresh
    _expect_run_state(page, run_id, "Success")
    screens.take(page, "retry-run-succeeded")

    assert live_ui.thread(MANUAL_CHANNEL, ts) == [BOLT_REPLY]
    posted = [
        c for c in sandbox.calls(api="slack", method="chat.postMessage") if c["params"].get("thread_ts") == ts
    ]
    assert len(posted) == 1, posted
    tries = api.task_tries(DAG_ID, run_id, "resolve", map_index=0)
    assert [t["state"] for t in tries] == ["failed", "success"], tries
    _open_mapped_task(page, live_ui, run_id, "post_results", ts)
    expect(page.get_by_text(BOLT_REPLY).first).to_be_visible()
    screens.take(page, "retry-post-results-log")


def test_creditbot_pages_requests_notebook_extra_link_and_refusal(
    page: Any, live_ui: Live, screens: Screens, chromium_browser: Any
) -> None:
    """Open CreditBot from the nav, read the requests, open an executed notebook, follow the task's
    extra link to it, and be refused when signed out."""
    from playwright.sync_api import expect

    api, base = live_ui.deployment.api, live_ui.deployment.api_url
    ts = live_ui.post(MANUAL_CHANNEL, ACME)
    # Through the REST API with dry_run as a boolean: the contract REST callers rely on.
    api.set_paused(DAG_ID, False)
    run_id = api.trigger(DAG_ID, conf={"message_ts": ts, "dry_run": False})["dag_run_id"]
    assert api.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT_MS / 1000)["state"] == "success"
    assert live_ui.thread(MANUAL_CHANNEL, ts) == [ACME_REPLY]

    page.goto(base + "/")
    nav = page.get_by_role("link", name="CreditBot")
    expect(nav).to_be_visible(timeout=30_000)  # plugin entries join the nav once the UI has fetched them
    nav.click()
    page.wait_for_url(re.compile(r"/plugin/credit-bot$"))
    frame = page.frame_locator("iframe")
    expect(frame.get_by_role("heading", name="CreditBot requests")).to_be_visible()
    row = frame.locator(f'tr[data-ts="{ts}"]')
    expect(row).to_contain_text("answered")
    expect(row).to_contain_text("$10,226.35")
    expect(row).to_contain_text("U0REQUESTER")
    expect(row).to_contain_text("Credit request acme")
    expect(row.get_by_role("link", name="Slack thread")).to_have_attribute("href", _permalink(live_ui, ts))
    expect(row.get_by_role("link", name="task log")).to_have_attribute(
        "href", re.compile(r"/tasks/post_results/mapped/\d+$")
    )
    expect(frame.get_by_label("Totals")).to_contain_text("answered")
    screens.take(page, "creditbot-requests")

    row.get_by_role("link", name="notebook").click()
    expect(frame.get_by_text("CreditBot read credit_amount = $10,226.35")).to_be_visible()
    credit = frame.get_by_text("Recommended credit: $10,226.35")
    per_mode = frame.locator("table").filter(has_text="traffic share")  # the notebook's per-mode table
    for mode in ("basic", "standard", "max"):
        expect(per_mode.get_by_role("cell", name=mode, exact=True)).to_be_visible()
    expect(frame.get_by_text("Code").first).to_be_visible()  # code cells folded
    screens.take(page, "creditbot-notebook-top")
    credit.scroll_into_view_if_needed()
    expect(credit).to_be_visible()
    screens.take(page, "creditbot-notebook-credit-and-per-mode-table")

    # The run_notebook task instance's Details tab lists its extra links.
    page.goto(f"{base}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/run_notebook/mapped/0")
    page.get_by_role("link", name="Details", exact=True).click()
    link = page.get_by_role("link", name="Executed notebook")
    expect(link).to_be_visible()
    link.scroll_into_view_if_needed()
    screens.take(page, "creditbot-extra-link")
    link.click()  # same origin: Airflow opens it in the same tab
    page.wait_for_url(re.compile(r"/credit-bot/notebooks/[^/]+/[^/]+\.ipynb$"))
    expect(page.get_by_text("CreditBot read credit_amount = $10,226.35")).to_be_visible()
    page.get_by_text("Recommended credit: $10,226.35").scroll_into_view_if_needed()
    screens.take(page, "creditbot-notebook-from-extra-link")
    notebook_url = page.url

    signed_out = chromium_browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        tab = signed_out.new_page()
        for url in (f"{base}/credit-bot/", notebook_url):
            response = tab.goto(url)
            assert response is not None
            assert response.status == 401, url
            expect(tab.get_by_text("Not signed in")).to_be_visible()
            assert "10,226.35" not in tab.content()
        screens.take(tab, "creditbot-refused-signed-out")
    finally:
        signed_out.close()


# ---- what a person does, step by step --------------------------------------------------------------


def _permalink(live: Live, ts: str) -> str:
    """The message's permalink, as Slack's "Copy link" gives it (chat.getPermalink)."""
    from slack_sdk import WebClient

    sandbox = live.stack.sandbox
    client = WebClient(token=sandbox.slack_token, base_url=sandbox.slack_base_url)
    link = str(client.chat_getPermalink(channel=MANUAL_CHANNEL, message_ts=ts)["permalink"])
    assert link.startswith("https://")
    assert link.endswith(f"/archives/{MANUAL_CHANNEL}/p{ts.replace('.', '')}")
    return link


def _open_trigger_form(page: Any) -> Any:
    from playwright.sync_api import expect

    page.goto(page.url.split("/dags/")[0] + f"/dags/{DAG_ID}")
    page.get_by_test_id("trigger-dag-button").click()
    form = page.get_by_role("dialog")
    expect(form.get_by_role("heading", name=f"Trigger Dag - {DAG_ID}")).to_be_visible()
    expect(form.get_by_test_id("config-form")).to_be_visible()
    return form


def _form_conf(form: Any) -> dict[str, Any]:
    """The run's conf as the form's Advanced Options show it (the JSON editor)."""
    from playwright.sync_api import expect

    form.get_by_role("button", name="Advanced Options").click()
    editor = form.locator(".view-lines")
    expect(editor).to_contain_text("}")
    conf = json.loads(editor.inner_text().replace("\xa0", " "))
    form.get_by_role("button", name="Run Parameters").click()
    expect(form.locator("[name=element_message_ts]")).to_be_visible()
    return dict(conf)


def _trigger_for_permalink(page: Any, live: Live, screens: Screens, permalink: str, step: str) -> str:
    """Paste the permalink, make the run live, trigger; the new run's id (from the page it opens)."""
    from playwright.sync_api import expect

    form = _open_trigger_form(page)
    form.locator("[name=element_message_ts]").fill(permalink)
    # The settings say dry-run; the labelled choice makes this run live.
    row = form.get_by_role("group").filter(has=page.locator("[name=element_dry_run]"))
    expect(row).to_contain_text(AS_CONFIGURED)
    row.get_by_role("combobox").click()
    page.get_by_role("option", name=LIVE).click()
    expect(row).to_contain_text(LIVE)
    assert _form_conf(form) == {"channel": None, "message_ts": permalink, "dry_run": "live", "force": False}
    screens.take(page, f"{step}-trigger-filled")
    form.get_by_test_id("trigger-dag-submit").click()
    page.wait_for_url(re.compile(rf"/dags/{DAG_ID}/runs/[^/]+$"))
    run_id = unquote(page.url.rsplit("/runs/", 1)[1])
    run = live.deployment.api.dag_run(DAG_ID, run_id)
    assert run["conf"]["message_ts"] == permalink
    assert run["run_type"] == "manual"
    return run_id


def _run_url(live: Live, run_id: str) -> str:
    return f"{live.deployment.api_url}/dags/{DAG_ID}/runs/{run_id}"


def _expect_run_state(page: Any, run_id: str, *states: str) -> str:
    """Wait until the run page's header shows the run in one of ``states`` (the page polls); that one."""
    from playwright.sync_api import expect

    header = page.get_by_role("heading", name=run_id, exact=True).locator("xpath=..")
    badge = header.get_by_test_id("state-badge")
    expect(badge).to_have_text(
        re.compile("^(" + "|".join(map(re.escape, states)) + ")$"), timeout=RUN_TIMEOUT_MS
    )
    return str(badge.inner_text())


def _rendered_name(live: Live, run_id: str, task_id: str, ts: str) -> str:
    """The name Airflow shows for the request's mapped task instance (its map_index_template)."""
    [ti] = [
        t
        for t in live.deployment.api.task_instances(DAG_ID, run_id)
        if t["task_id"] == task_id and ts in (t.get("rendered_map_index") or "")
    ]
    return str(ti["rendered_map_index"])


def _task_row(page: Any, task_id: str, ts: str) -> Any:
    """The run page's row of ``task_id`` for the request ``ts`` (its name says which request it is)."""
    cell = page.get_by_test_id("table-cell-task_display_name").get_by_text(task_id, exact=True)
    return page.get_by_role("row").filter(has=cell).filter(has_text=ts)


def _open_mapped_task(page: Any, live: Live, run_id: str, task_id: str, ts: str) -> str:
    """From the run page, open the request's mapped ``task_id`` by its name; the name."""
    from playwright.sync_api import expect

    name = _rendered_name(live, run_id, task_id, ts)
    assert ts in name, f"{task_id}'s name {name!r} does not say which request it is"
    if not page.url.endswith(f"/runs/{run_id}"):
        page.goto(_run_url(live, run_id))
    row = _task_row(page, task_id, ts)
    row.get_by_test_id("table-cell-rendered_map_index").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=f"{task_id} [{name}]")).to_be_visible()
    return name
