"""Approval before posting, seen and answered in the Airflow UI, in headless Chromium on a real deployment.

A LocalExecutor deployment WITH a triggerer (Socket Mode, the HITL wait), scheduled runs on, setting
``approval`` = "all" (supervised), on the sandbox:

* a credit request's pending approval (``credit_bot_approval``'s ``decide``, Airflow's HITL operator)
  is listed in Airflow's own Browse → Required Actions (``/required_actions``) with CreditBot's subject;
  its page (the same one the approval DM links to) shows the proposed reply; Approve there posts the
  reply once in the request's thread, the approval DM says the Airflow user approved, and the HITL
  detail holds the choice;
* CreditBot's requests page filters "waiting for approval": the waiting request, not the answered
  one; once approved (by a Slack click) and merged by the next ``credit_bot`` run, the page says
  who approved it and when.

The tests run in order on one deployment (the second reads the first's answered request). Each step
leaves a screenshot in ``test-artifacts/browser-approval/``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from credit_bot.approval import approval_run_id
from harness import PROJECT_ROOT
from harness.testing.approvals import (
    ACME,
    ACME_REPLY,
    APPROVAL_DAG,
    BOLT,
    BOLT_REPLY,
    OPERATOR,
    OPERATOR_DM,
    approval_dm,
    hitl_path,
    replies,
    run_of,
    supervised,
    updates,
    wait,
    wait_awaiting,
)
from harness.testing.browser import TIMINGS, Screens
from harness.testing.live import DAG_ID, SCHEDULED_CHANNEL, Live

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "browser-approval"
UI_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def live_ui(chromium_browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """This module's deployment (overrides conftest's ``live_ui``, so ``page`` signs in here).

    Unlike conftest's: a triggerer (it holds Socket Mode, which carries the messages and the
    clicks), scheduled runs, task retries as in production, and every live reply waiting for
    approval — the ``live`` fixture of tests/deploy/test_approval_deployment.py.
    """
    workdir = tmp_path_factory.mktemp("deployment-browser-approval")
    with supervised(workdir, "UI, approval all", timings=TIMINGS) as live:
        yield live


@pytest.fixture(scope="module")
def screens() -> Screens:
    """Screenshots in a folder of their own (conftest's is emptied by the other browser module)."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return Screens(ARTIFACTS)


# ---- tests --------------------------------------------------------------------------------------------


def test_pending_approval_is_listed_and_approved_in_airflows_required_actions(
    page: Any, live_ui: Live, screens: Screens
) -> None:
    from playwright.sync_api import expect

    api, base = live_ui.deployment.api, live_ui.deployment.api_url
    ts, dm = _post_and_ask(live_ui, ACME)
    run_id = run_of(dm)
    wait_awaiting(live_ui, run_id)
    assert replies(live_ui, ts) == []  # nothing public while it waits
    pending = api.request("GET", hitl_path(run_id))
    subject = pending["subject"]
    assert ACME_REPLY in subject, subject
    assert ts in subject, subject  # which request: the requester and the message's ts
    task_page = f"{base}/dags/{APPROVAL_DAG}/runs/{quote(run_id, safe='')}/tasks/decide/required_actions"
    assert f"Also in Airflow: {task_page}" in dm["text"]  # the DM links to the page used below

    # Browse → Required Actions: Airflow's list of every pending human-in-the-loop task.
    page.goto(base + "/")
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Required Actions").click()
    page.wait_for_url(re.compile(r"/required_actions(\?.*)?$"))
    row = page.get_by_role("row").filter(has_text=subject)
    expect(row).to_have_count(1, timeout=UI_TIMEOUT_MS)
    expect(row).to_contain_text("Approval Required")
    expect(row).to_contain_text(APPROVAL_DAG)
    screens.take(page, "required-actions-list")

    row.get_by_role("link", name=subject).click()
    page.wait_for_url(task_page)
    expect(page.get_by_text(subject).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_text(f"Proposed reply: {ACME_REPLY}")).to_be_visible()
    expect(page.get_by_text("Approve posts the reply in the thread; Reject posts nothing.")).to_be_visible()
    expect(page.get_by_text("base_url is not configured")).to_have_count(0)
    notebook = page.locator(f'a[href^="{base}/credit-bot/notebooks/"][href$=".ipynb"]')
    expect(notebook).to_have_count(1)  # the executed notebook, as a link to CreditBot's notebook view
    expect(notebook).to_have_text(str(notebook.get_attribute("href")))
    viewer = page.context.new_page()  # signed in, like the tab
    try:
        viewer.goto(str(notebook.get_attribute("href")))
        expect(viewer.get_by_text("CreditBot read credit_amount = $10,226.35")).to_be_visible()
    finally:
        viewer.close()
    expect(page.get_by_text("Also in Airflow")).to_have_count(0)  # no link to the page itself
    approve = page.get_by_test_id("hitl-option-Approve")
    expect(approve).to_be_enabled()
    expect(page.get_by_test_id("hitl-option-Reject")).to_be_enabled()
    screens.take(page, "required-action-pending")

    approve.click()  # Approve / Reject are the submit buttons of an approval task
    clicked = time.monotonic()
    expect(page.get_by_text(re.compile(r"Response received at .* from admin"))).to_be_visible(
        timeout=UI_TIMEOUT_MS
    )
    expect(page.get_by_test_id("hitl-option-Approve")).to_be_disabled()
    screens.take(page, "required-action-answered")

    live_ui.wait_for_reply(SCHEDULED_CHANNEL, ts, timeout=180)
    TIMINGS["approval UI: Approve in Required Actions -> reply posted"] = time.monotonic() - clicked
    run = api.wait_for_run(APPROVAL_DAG, run_id, timeout=180)
    assert run["state"] == "success", api.task_instances(APPROVAL_DAG, run_id)
    assert replies(live_ui, ts) == [ACME_REPLY]
    posted = [
        c
        for c in live_ui.stack.sandbox.calls(api="slack", method="chat.postMessage")
        if c["params"].get("thread_ts") == ts
    ]
    assert len(posted) == 1, posted  # once: no second attempt either
    update = wait("approval DM updated", lambda: updates(live_ui, dm["ts"]), live_ui)
    assert "Approved by admin (in Airflow)" in update[-1]["text"], update[-1]["text"]
    assert not [b for b in update[-1]["blocks"] if b["type"] == "actions"]  # buttons removed
    detail = api.request("GET", hitl_path(run_id))
    assert detail["chosen_options"] == ["Approve"]
    assert detail["response_received"] is True
    assert detail["responded_by_user"]["name"] == "admin"
    assert not detail["params_input"].get("slack_user")  # decided in Airflow, not by a button

    # The pending list no longer offers it; the reviewed one says who approved.
    page.goto(base + "/required_actions?response_received=false")
    expect(page.get_by_text("No Required Actions found")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_role("row").filter(has_text=subject)).to_have_count(0)
    screens.take(page, "required-actions-pending-after")
    page.goto(base + "/required_actions?response_received=true")
    row = page.get_by_role("row").filter(has_text=subject)
    expect(row).to_contain_text("Approval Received", timeout=UI_TIMEOUT_MS)
    expect(row).to_contain_text("admin")
    screens.take(page, "required-actions-reviewed")


def test_requests_page_filters_waiting_for_approval_then_shows_who_approved_and_when(
    page: Any, live_ui: Live, screens: Screens
) -> None:
    from playwright.sync_api import expect

    api, sandbox = live_ui.deployment.api, live_ui.stack.sandbox
    ts, dm = _post_and_ask(live_ui, BOLT)
    run_id = run_of(dm)
    wait_awaiting(live_ui, run_id)
    _run_credit_bot(live_ui)  # merges the first test's decision; BOLT stays waiting
    entries = _ledger(live_ui)
    assert entries[ts]["outcome"] == "awaiting_approval", entries[ts]
    answered = sorted(t for t, e in entries.items() if e["outcome"] == "answered")
    assert answered, f"the first test leaves an answered (approved) request: {entries}"

    frame = _open_requests_page(page, live_ui)
    for other in answered:  # shown unfiltered, so their absence below is the filter's doing
        expect(frame.locator(f'tr[data-ts="{other}"]')).to_contain_text("answered")
        earlier = api.request("GET", hitl_path(approval_run_id(SCHEDULED_CHANNEL, other, 1)))
        when = _minute(earlier["responded_at"])
        expect(frame.locator(f'tr[data-ts="{other}"]')).to_contain_text(
            f"approved by admin (in Airflow) at {when}"
        )
    _filter(page, frame, "waiting for approval")
    waiting = frame.locator(f'tr[data-ts="{ts}"]')
    expect(waiting).to_contain_text("awaiting approval")
    expect(waiting).to_contain_text(f"waiting for approval since {_minute(entries[ts]['approval']['asked'])}")
    expect(waiting).to_contain_text("$1,283.00")
    expect(waiting).to_contain_text("Credit memo for bolt")
    for other in answered:
        expect(frame.locator(f'tr[data-ts="{other}"]')).to_have_count(0)
    expect(frame.locator("tbody tr")).to_have_count(1)
    screens.take(page, "creditbot-waiting-for-approval")

    # The approver clicks Approve in the DM; the next credit_bot run tells the ledger.
    state = sandbox.click(OPERATOR, OPERATOR_DM, dm["ts"], "credit_bot_approve", wait=True)
    assert state["status"] == "acked", state
    live_ui.wait_for_reply(SCHEDULED_CHANNEL, ts, timeout=180)
    assert api.wait_for_run(APPROVAL_DAG, run_id, timeout=180)["state"] == "success"
    assert replies(live_ui, ts) == [BOLT_REPLY]
    decided = api.request("GET", hitl_path(run_id))
    assert decided["chosen_options"] == ["Approve"]
    assert decided["params_input"]["slack_user"] == OPERATOR
    _run_credit_bot(live_ui)
    assert _ledger(live_ui)[ts]["outcome"] == "answered"

    page.reload()  # still filtered: nothing waits any more
    frame = page.frame_locator("iframe")
    expect(frame.get_by_label("Outcome")).to_have_value("awaiting_approval", timeout=UI_TIMEOUT_MS)
    expect(frame.get_by_text("No request matches these filters.")).to_be_visible()
    screens.take(page, "creditbot-waiting-none")
    _filter(page, frame, "answered")
    row = frame.locator(f'tr[data-ts="{ts}"]')
    when = _minute(decided["responded_at"])
    expect(row).to_contain_text(f"approved by {OPERATOR} at {when}")
    expect(row).to_contain_text("$1,283.00")
    for other in answered:
        expect(frame.locator(f'tr[data-ts="{other}"]')).to_contain_text("approved by admin (in Airflow)")
    screens.take(page, "creditbot-approved-by-whom-when")


# ---- helpers ----------------------------------------------------------------------------------------


def _post_and_ask(live: Live, text: str) -> tuple[str, dict[str, Any]]:
    """Post a request in the settings' channel; wait for its approval DM; (ts, DM)."""
    ts = live.post(SCHEDULED_CHANNEL, text)
    posted = time.monotonic()
    dm = wait(f"approval DM for {ts}", lambda: approval_dm(live, ts), live, timeout=240)
    TIMINGS.setdefault("approval UI: post -> approval DM", time.monotonic() - posted)
    return ts, dm


def _run_credit_bot(live: Live) -> None:
    """One credit_bot run through the REST API: its record_ledger merges the decisions written since."""
    api = live.deployment.api
    run_id = api.trigger(DAG_ID, {})["dag_run_id"]
    run = api.wait_for_run(DAG_ID, run_id, timeout=240)
    assert run["state"] == "success", live.states(run_id)


def _ledger(live: Live) -> dict[str, dict[str, Any]]:
    book = json.loads(live.deployment.api.request("GET", "/variables/credit_bot_ledger")["value"])
    return dict(book["channels"][SCHEDULED_CHANNEL]["live"]["requests"])


def _minute(iso: str) -> str:
    """``2026-05-01T10:02:33.5Z`` as the requests page shows it: ``2026-05-01 10:02``."""
    return iso[:16].replace("T", " ")


def _open_requests_page(page: Any, live: Live) -> Any:
    """CreditBot's requests page from the nav entry; the frame it is shown in."""
    from playwright.sync_api import expect

    page.goto(live.deployment.api_url + "/")
    nav = page.get_by_role("link", name="CreditBot")
    expect(nav).to_be_visible(timeout=UI_TIMEOUT_MS)  # plugin entries join the nav once fetched
    nav.click()
    page.wait_for_url(re.compile(r"/plugin/credit-bot$"))
    frame = page.frame_locator("iframe")
    expect(frame.get_by_role("heading", name="CreditBot requests")).to_be_visible(timeout=UI_TIMEOUT_MS)
    return frame


def _filter(page: Any, frame: Any, outcome_label: str) -> None:
    """Choose an outcome in the page's filter form and show; returns once the filtered page is loaded."""
    from playwright.sync_api import expect

    [value] = frame.get_by_label("Outcome").select_option(label=outcome_label)
    with page.expect_event("framenavigated", predicate=lambda f: f"outcome={value}" in f.url):
        frame.get_by_role("button", name="Show").click()
    expect(frame.get_by_label("Outcome").locator("option:checked")).to_have_text(outcome_label)
