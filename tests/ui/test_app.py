"""The CreditBot app on its own (FastAPI TestClient): the requests page, the notebook view, errors.

Authorization is the auth manager's job and is proven with the whole Airflow app in test_auth.py;
here it is switched off so each page's content can be checked directly.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from credit_bot.ui import app as app_module
from tests.ui.conftest import (
    CHANNEL,
    NOW_TS,
    RUN_DIR,
    RUN_ID,
    WAREHOUSE_PASSWORD,
    entry,
    executed_notebook,
    write_notebook,
)

NAME = "C0CREDITTEST-1796190000.000100-0.ipynb"


@pytest.fixture
def client() -> Iterator[TestClient]:
    app_module._WORKSPACE.clear()
    app = app_module.create_app()
    app.dependency_overrides[app.state.authorize] = lambda: None
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-ts="([^"]+)"', html)


def test_requests_page_lists_the_ledger_newest_first_with_what_happened(
    client, deployment_env, output_dir
) -> None:
    path = write_notebook(output_dir, NAME)
    deployment_env(
        [
            entry(
                NOW_TS - 7200,
                "answered",
                amount="4948.80",
                amount_parts="basic $4,948.80 + standard nan + max nan",
                notebooks=[path],
                reply_ts="1.1",
            ),
            entry(
                NOW_TS - 60,
                "escalated",
                attempts=3,
                requester="U0OTHER",
                snippet="<script>alert(1)</script> pay me",
                last_error="notebook for <b>x</b>: the notebook raised ZeroDivisionError",
                map_index=4,
            ),
        ]
    )
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    assert _rows(html) == [f"{NOW_TS - 60:.6f}", f"{NOW_TS - 7200:.6f}"]  # newest first
    assert "$4,948.80" in html
    assert "basic $4,948.80 + standard nan + max nan" in html  # the team notebook's parts
    assert "answered" in html
    assert "escalated" in html
    assert "U0REQUESTER" in html
    assert "U0OTHER" in html
    assert "the notebook raised ZeroDivisionError" in html
    # Everything from the ledger is escaped; the page has no script of its own or anyone else's.
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; pay me" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert f'href="/credit-bot/notebooks/{RUN_DIR}/{NAME}"' in html
    assert f'href="/dags/credit_bot/runs/{RUN_ID.replace(":", "%3A").replace("+", "%2B")}' in html
    assert "/tasks/post_results/mapped/4" in html
    assert "script-src" not in response.headers["content-security-policy"]  # falls back to 'none'
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_totals_and_filters(client, deployment_env) -> None:
    now = datetime.now(UTC).timestamp()
    deployment_env(
        [
            entry(now - 3600, "answered", amount="100.10"),
            entry(now - 7200, "answered", amount="0.20"),
            entry(now - 3 * 86400, "answered", amount="5000.00"),
            entry(now - 600, "link_requested"),
            entry(now - 900, "escalated"),
            entry(now - 1200, "answered", amount="77.00", dry_run=True),
        ]
    )
    totals = re.search(r'aria-label="Totals">(.*?)</div></div>', client.get("/?mode=live&period=24h").text)
    assert totals is not None
    text = re.sub(r"<[^>]+>", " ", totals.group(1))
    assert " ".join(text.split()) == "4 requests 2 answered $100.30 approved 1 asked for a link 1 escalated"

    assert len(_rows(client.get("/").text)) == 6
    assert len(_rows(client.get("/?mode=dry_run").text)) == 1
    assert len(_rows(client.get("/?period=24h").text)) == 5
    assert len(_rows(client.get("/?outcome=escalated").text)) == 1
    only = client.get(f"/?request={CHANNEL}:{now - 600:.6f}").text
    assert _rows(only) == [f"{now - 600:.6f}"]


def test_approvals_are_shown_and_the_waiting_ones_can_be_filtered(client, deployment_env) -> None:
    now = datetime.now(UTC).timestamp()
    approved = {"state": "approved", "by": "U0OPERATOR", "via": "slack", "at": "2026-05-01T10:02:00"}
    rejected = {
        "state": "rejected",
        "by": "alice",
        "via": "airflow",
        "at": "2026-05-01T11:00:00",
        "reason": "dup",
    }
    deployment_env(
        [
            entry(now - 60, "awaiting_approval", amount="10226.35", approval={"state": "waiting"}),
            entry(now - 600, "answered", amount="1283.00", approval=approved),
            entry(now - 900, "rejected", approval=rejected),
            entry(now - 1200, "answered", amount="5.00"),
        ]
    )
    page = client.get("/").text
    assert '<option value="awaiting_approval">waiting for approval</option>' in page
    assert "approved by U0OPERATOR at 2026-05-01 10:02" in page
    assert "rejected by alice (in Airflow) at 2026-05-01 11:00: dup" in page
    waiting = client.get("/?outcome=awaiting_approval").text
    assert _rows(waiting) == [f"{now - 60:.6f}"]
    assert "waiting for approval since" in waiting


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("outcome=paid", id="unknown-outcome"),
        pytest.param("mode=both", id="unknown-mode"),
        pytest.param("period=99d", id="unknown-period"),
    ],
)
def test_a_bad_filter_is_400_saying_what_is_allowed(client, deployment_env, query) -> None:
    deployment_env([])
    response = client.get(f"/?{query}")
    assert response.status_code == 400
    assert "must be one of" in response.text


def test_a_removed_notebook_is_shown_as_removed(client, deployment_env, output_dir) -> None:
    kept = write_notebook(output_dir, NAME)
    gone = str(output_dir / RUN_DIR / "C0CREDITTEST-1796180000.000100-0.ipynb")
    deployment_env(
        [
            entry(NOW_TS - 10, "answered", amount="1.00", notebooks=[kept]),
            entry(NOW_TS - 20, "answered", amount="2.00", notebooks=[gone]),
        ]
    )
    html = client.get("/").text
    assert html.count("removed (retention)") == 1
    assert f"/credit-bot/notebooks/{RUN_DIR}/{NAME}" in html
    assert "C0CREDITTEST-1796180000.000100-0.ipynb" not in html


def test_slack_permalinks_from_the_workspace_url(client, deployment_env, monkeypatch) -> None:
    from slack_sdk import WebClient

    from harness.local import DEMO_SCENARIO, connection_env
    from harness.sandbox import Sandbox

    with Sandbox.from_scenario(DEMO_SCENARIO) as sandbox:
        ts = sandbox.add_message(CHANNEL, "credit please", user="U0REQUESTER")
        deployment_env([entry(float(ts), "answered", amount="1.00")])
        conn = connection_env(sandbox, Path("unused.duckdb"))["AIRFLOW_CONN_SLACK_API_DEFAULT"]
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_API_DEFAULT", conn)
        html = client.get("/").text
        client.get("/")  # asked once per process, not per page
        calls = sandbox.calls(api="slack", method="auth.test")
        slack = WebClient(token=sandbox.slack_token, base_url=sandbox.slack_base_url)
        expected = slack.chat_getPermalink(channel=CHANNEL, message_ts=ts)["permalink"]
    assert len(calls) == 1
    assert f'href="{expected}"' in html


def test_without_slack_the_page_names_channel_and_ts(client, deployment_env) -> None:
    deployment_env([entry(NOW_TS, "answered", amount="1.00")])
    html = client.get("/").text
    assert f"{CHANNEL} {NOW_TS:.6f}" in html
    assert "slack.com" not in html


def test_notebook_view_renders_outputs_without_scripts_or_secrets(client, deployment_env, output_dir) -> None:
    deployment_env([])
    write_notebook(output_dir, NAME, executed_notebook(secret=WAREHOUSE_PASSWORD))
    response = client.get(f"/notebooks/{RUN_DIR}/{NAME}")
    assert response.status_code == 200
    html = response.text
    assert "credit_amount = 4948.80" in html
    assert "<td>basic</td><td>812.40</td>" in html  # the DataFrame table survives sanitizing
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in html
    assert "<details" in html
    assert "<summary>Code</summary>" in html
    for unsafe in ("<script", "onerror", "javascript:", "alert('js')"):
        assert unsafe not in html, unsafe
    assert WAREHOUSE_PASSWORD not in html
    assert "This notebook contains a credential (1 occurrence(s))" in html
    assert "← CreditBot requests" in html
    assert "CreditBot read <b>credit_amount = $4,948.80</b> from this notebook" in html
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_a_clean_notebook_has_no_credential_warning(client, deployment_env, output_dir) -> None:
    deployment_env([])
    write_notebook(output_dir, NAME)
    html = client.get(f"/notebooks/{RUN_DIR}/{NAME}").text
    assert "credential" not in html


def _symlinked_run_dir(output_dir: Path) -> str:
    elsewhere = output_dir.parent / "elsewhere"
    write_notebook(elsewhere, NAME, run_dir="x")
    (output_dir / "linked_run").symlink_to(elsewhere / "x")
    return f"/notebooks/linked_run/{NAME}"


def _symlinked_file(output_dir: Path) -> str:
    secret = output_dir.parent / "secret.ipynb"
    secret.write_text(executed_notebook())
    (output_dir / RUN_DIR).mkdir()
    (output_dir / RUN_DIR / NAME).symlink_to(secret)
    return f"/notebooks/{RUN_DIR}/{NAME}"


def _directory_named_like_a_notebook(output_dir: Path) -> str:
    (output_dir / RUN_DIR / NAME).mkdir(parents=True)
    return f"/notebooks/{RUN_DIR}/{NAME}"


def _not_json(output_dir: Path) -> str:
    write_notebook(output_dir, NAME, "not a notebook")
    return f"/notebooks/{RUN_DIR}/{NAME}"


def _instrumented_copy(output_dir: Path) -> str:
    write_notebook(output_dir, NAME, run_dir=".instrumented")
    return f"/notebooks/.instrumented/{NAME}"


@pytest.mark.parametrize(
    "make_url",
    [
        pytest.param(lambda d: f"/notebooks/{RUN_DIR}/{NAME}", id="missing"),
        pytest.param(lambda d: "/notebooks/..%2F..%2Fetc/passwd", id="traversal-encoded"),
        pytest.param(lambda d: f"/notebooks/..%2F{RUN_DIR}/{NAME}", id="traversal-run"),
        pytest.param(lambda d: f"/notebooks/{RUN_DIR}/..%2F..%2F{NAME}", id="traversal-name"),
        pytest.param(lambda d: f"/notebooks/{RUN_DIR}/notes.txt", id="other-file"),
        pytest.param(lambda d: f"/notebooks/{RUN_DIR}/{NAME[:-6]}.py", id="other-extension"),
        pytest.param(_symlinked_run_dir, id="symlinked-run-folder"),
        pytest.param(_symlinked_file, id="symlinked-file"),
        pytest.param(_directory_named_like_a_notebook, id="a-directory"),
        pytest.param(_not_json, id="not-a-notebook"),
        pytest.param(_instrumented_copy, id="dot-folder"),
    ],
)
def test_anything_but_an_executed_notebook_is_404(client, deployment_env, output_dir, make_url) -> None:
    deployment_env([])
    (output_dir / "notes.txt").write_text("not ours")
    response = client.get(make_url(output_dir))
    assert response.status_code == 404
    assert "No executed CreditBot notebook or page at this address." in response.text
    assert str(output_dir) not in response.text


def test_a_failure_is_a_generic_500_with_the_details_only_in_the_log(client, deployment_env, caplog) -> None:
    deployment_env("{not json")
    response = client.get("/")
    assert response.status_code == 500
    assert response.text.count("CreditBot could not show this page") == 1
    assert "not JSON" not in response.text
    assert "Traceback" not in response.text
    assert "CreditBot page / failed" in caplog.text


@pytest.mark.parametrize("entries", [200, 5000], ids=["200-entries", "5000-entries-at-the-bound"])
def test_the_requests_page_stays_fast(client, deployment_env, output_dir, entries, record_property) -> None:
    """5,000 entries: 30 days of the bounded ledger at about 170 requests a day, 30 times the usual load."""
    paths = [write_notebook(output_dir, f"C0CREDITTEST-{NOW_TS - i * 60}.000100-0.ipynb") for i in range(50)]
    deployment_env(
        [
            entry(NOW_TS - i * 60, "answered", amount="12.34", notebooks=[paths[i % len(paths)]])
            for i in range(entries)
        ]
    )
    client.get("/")  # the first request imports and warms up
    begun = time.perf_counter()
    for _ in range(3):
        response = client.get("/")
    seconds = (time.perf_counter() - begun) / 3
    assert response.status_code == 200
    assert len(_rows(response.text)) == 200
    record_property("page_seconds", seconds)
    print(f"requests page with {entries} entries: {seconds * 1000:.0f} ms")
    assert seconds < 2.0


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param(
            "$4,948.80$nan$nan", "$4,948.80 (basic $4,948.80 + standard nan + max nan)", id="team-parts"
        ),
        pytest.param("4948.8", "$4,948.80", id="number"),
        pytest.param("twelve", None, id="not-money"),
    ],
)
def test_notebook_banner_shows_the_parts_it_read(value: str, shown: str | None) -> None:
    import nbformat

    from credit_bot.notebooks import RESULT_MIME
    from credit_bot.ui.render import read_out_credit

    nb = nbformat.v4.new_notebook()
    result = {"has_credit_amount": True, "credit_amount": {"type": "str", "value": value}}
    nb.cells.append(
        nbformat.v4.new_code_cell(
            outputs=[nbformat.v4.new_output("display_data", data={RESULT_MIME: result})]
        )
    )
    assert read_out_credit(nb) == shown
