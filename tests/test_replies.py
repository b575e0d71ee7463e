"""Tests for credit_bot.replies: the texts CreditBot posts in threads and DMs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from credit_bot.replies import approval, defang, link_request, operator_dm

PERMALINK = "https://fake-workspace.slack.com/archives/C0123ABCD/p1764000000000100"
LOG_URL = "http://localhost:8080/dags/credit_bot/runs/manual__fake/tasks/resolve?try_number=1"


@pytest.mark.parametrize(
    ("amount", "category", "expected"),
    [
        pytest.param(Decimal("4948.8"), "exceptions", "Approved, $4,948.80, exceptions", id="brief-example"),
        pytest.param(
            Decimal("4948.795"), "exceptions", "Approved, $4,948.80, exceptions", id="rounds-half-up"
        ),
        pytest.param(Decimal("0"), "goodwill", "Approved, $0.00, goodwill", id="other-category"),
        pytest.param(
            Decimal("1234567.89"), "exceptions", "Approved, $1,234,567.89, exceptions", id="millions"
        ),
    ],
)
def test_approval(amount: Decimal, category: str, expected: str) -> None:
    assert approval(amount, category) == expected


def test_link_request_mentions_hosts() -> None:
    text = link_request(["credit-sandbox.cloud.looker.com", "other.cloud.looker.com"])
    assert text.startswith("Please provide a Looker link")
    assert "credit-sandbox.cloud.looker.com, other.cloud.looker.com" in text
    assert "<" not in text


def test_link_request_without_hosts() -> None:
    assert "your Looker instance" in link_request([])


def test_operator_dm_contents() -> None:
    text = operator_dm(
        problem="Looker returned 404 for Look 123",
        permalink=PERMALINK,
        channel="C0123ABCD",
        ts="1764000000.000100",
        log_url=LOG_URL,
        next_step="fix the Look and re-run with message_ts",
        links=["https://credit-sandbox.cloud.looker.com/looks/123"],
        notebooks=["/fake/output/run/C0123ABCD-1764000000.000100-0.ipynb"],
    )
    assert "Looker returned 404 for Look 123" in text
    assert PERMALINK in text
    assert LOG_URL in text
    assert "Next: fix the Look and re-run with message_ts" in text
    assert "https://credit-sandbox.cloud.looker.com/looks/123" in text
    assert "C0123ABCD-1764000000.000100-0.ipynb" in text


def test_operator_dm_without_permalink_or_log() -> None:
    text = operator_dm(
        problem="boom",
        permalink=None,
        channel="C0123ABCD",
        ts="1764000000.000100",
        log_url=None,
        next_step="nothing",
    )
    assert "channel C0123ABCD, ts 1764000000.000100" in text
    assert "Airflow log" not in text


def test_operator_dm_defangs_problem() -> None:
    text = operator_dm(
        problem="notebook printed <!channel> and <@U0BADBAD>",
        permalink=PERMALINK,
        channel="C0123ABCD",
        ts="1764000000.000100",
        log_url=None,
        next_step="x",
    )
    assert "<!channel>" not in text
    assert "<@U0BADBAD>" not in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("<!channel>", "&lt;!channel&gt;", id="channel"),
        pytest.param("<!here> hi", "&lt;!here&gt; hi", id="here"),
        pytest.param("<@U123>", "&lt;@U123&gt;", id="user"),
        pytest.param("<#C123|general>", "&lt;#C123|general&gt;", id="channel-link"),
        pytest.param("&lt;!channel&gt;", "&amp;lt;!channel&amp;gt;", id="already-escaped-stays-text"),
        pytest.param("a & b", "a &amp; b", id="ampersand"),
        pytest.param("plain text", "plain text", id="plain"),
    ],
)
def test_defang(text: str, expected: str) -> None:
    result = defang(text)
    assert result == expected
    assert "<" not in result
    assert ">" not in result


@pytest.mark.parametrize(
    ("length", "limit"),
    [
        pytest.param(1000, 300, id="default-limit"),
        pytest.param(51, 50, id="one-over"),
        pytest.param(10_000, 500, id="dm-limit"),
    ],
)
def test_defang_bounds_length(length: int, limit: int) -> None:
    result = defang("x" * length, limit)
    assert len(result) == limit
    assert result.endswith("…")


def test_defang_keeps_text_at_limit() -> None:
    assert defang("x" * 300) == "x" * 300


@pytest.mark.parametrize(
    ("requester", "line"),
    [
        pytest.param("U0ASKER", "• Requested by: <@U0ASKER>", id="person"),
        pytest.param("B0WORKFLOW", "• Requested by: bot B0WORKFLOW", id="workflow-without-mention"),
        pytest.param("<!channel>", None, id="not-an-id-is-never-quoted"),
        pytest.param(None, None, id="unknown"),
    ],
)
def test_operator_dm_names_the_requester(requester: str | None, line: str | None) -> None:
    text = operator_dm(
        problem="x",
        permalink=PERMALINK,
        channel="C0123ABCD",
        ts="1.000001",
        log_url=None,
        next_step="y",
        requester=requester,
    )
    assert (line in text.splitlines()) if line else "Requested by" not in text


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        pytest.param(
            "https://airflow.example.com",
            "• Executed notebook: https://airflow.example.com/credit-bot/notebooks/run/"
            "C0123ABCD-1764000000.000100-0.ipynb",
            id="linked-through-base-url",
        ),
        pytest.param(
            None,
            "• Executed notebook: /fake/output/run/C0123ABCD-1764000000.000100-0.ipynb "
            "(no link: Airflow's [api] base_url is not configured)",
            id="no-base-url",
        ),
        pytest.param(
            "/airflow",
            "• Executed notebook: /fake/output/run/C0123ABCD-1764000000.000100-0.ipynb "
            "(no link: Airflow's [api] base_url is not configured)",
            id="a-path-is-not-a-link",
        ),
    ],
)
def test_operator_dm_links_the_notebook_view(base_url, expected) -> None:
    text = operator_dm(
        problem="boom",
        permalink=None,
        channel="C0123ABCD",
        ts="1764000000.000100",
        log_url=None,
        next_step="nothing",
        notebooks=["/fake/output/run/C0123ABCD-1764000000.000100-0.ipynb"],
        base_url=base_url,
    )
    assert expected in text.splitlines()


def test_operator_dm_names_the_query_each_link_gave() -> None:
    query = (
        "dashboard 801 tile 'Spend': query 90001 (built from query 2001), filters: "
        "counters_by_billable_item.account_sid = AC00000000000000000000000000000a01 [url]"
    )
    text = operator_dm(
        problem="boom", permalink=None, channel="C1", ts="1.2", log_url=None, next_step="n", queries=[query]
    )
    assert f"• Query: {query}" in text.splitlines()
