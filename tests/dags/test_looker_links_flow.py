"""Full runs of the credit_bot DAG (``dag.test()``) with Looker links as analysts share them (issue 29).

Filtered and unfiltered dashboards, a dashboard with two Verify tiles, one with merged results only,
an expanded explore URL and a SQL Runner link, answered by the reference notebook on the sample
warehouse. Each answer is checked on the SQL the notebook received (papermill's ``looker``
parameter): it is the sample Look's SQL for the account and period the link describes. And each
amount is the one the same run computed for that account's sample Look (the samples' figures are
the reference notebook's to set), so a wrong account shows as a wrong amount too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import nbformat
import pytest

from harness import PROJECT_ROOT
from harness.sandbox.looker_sql import normalized
from harness.testing.flows import HOST, ledger_entry, thread_posts

pytestmark = pytest.mark.integration

SQL = PROJECT_ROOT / "include" / "sandbox" / "sql"
ACME = "AC00000000000000000000000000000a01"
DELTA = "AC00000000000000000000000000000d01"
PERIOD = "2026-10-01 to 2026-11-01"
# The fields and filters of the sample Looks (include/sandbox/sql), as an analyst's explore URL has them.
EXPLORE_FIELDS = (
    "account_dimension.account_sid,account_dimension.friendly_name,billable_items.sid,"
    "billable_item_metadata_alex.product,counters_by_billable_item.total_sum,"
    "counters_by_billable_item.quantity_sum"
)
# The sample Looks of the accounts the links below describe (include/sandbox/scenarios/demo.json).
SAMPLE_LOOKS = {"acme": 101, "bolt": 102, "delta": 104, "hotel": 108}
FRIENDLY_NAMES = "%Outbound SMS%,%Outbound Shortcode SMS%,-%Say%,-%Incoming%,-%Phone Number%"
SAMPLE_FILTERS = {
    "counters_by_billable_item.units": "USD",
    "counters_by_billable_item.subtype": "sale,tax",
    "billable_items.friendly_name": FRIENDLY_NAMES,
    "billable_item_metadata_alex.product": "%Authy%",
}


def _run(dag: Any) -> str:
    # Every param is passed explicitly: dag.test() keeps the last run's conf in the DAG's params.
    return str(
        dag.test(run_conf={"channel": None, "message_ts": None, "dry_run": None, "force": False}).state
    )


def _slack(url: str) -> str:
    """A URL as Slack's message text carries it: ``&`` escaped."""
    return url.replace("&", "&amp;")


def _explore_url(account: str) -> str:
    query = {
        "fields": EXPLORE_FIELDS,
        "f[counters_by_billable_item.account_sid]": account,
        "f[counters_by_billable_item.date_date]": PERIOD,
        **{f"f[{field}]": value for field, value in SAMPLE_FILTERS.items()},
        "sorts": "counters_by_billable_item.total_sum desc",
        "limit": "500",
    }
    return f"{HOST}/explore/billing/counters_by_billable_item?{urlencode(query)}"


def _notebook_sql(ts: str) -> list[str]:
    """The ``looker`` parameter papermill gave each notebook the request ran."""
    return [
        nbformat.read(path, as_version=4).metadata["papermill"]["parameters"]["looker"]
        for path in ledger_entry(ts)["notebooks"]
    ]


def _sample_sql(name: str) -> str:
    return normalized((SQL / name).read_text())


def _resolved(run_id: str, ts: str) -> dict[str, Any]:
    """resolve's output for one request, as the run's XCom holds it."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(XComModel).filter(XComModel.run_id == run_id, XComModel.task_id == "resolve").all()
        )
        values = [XComModel.deserialize_value(row) for row in rows]
    [resolved] = [v for v in values if v and v.get("ts") == ts]
    return resolved


def _dm(stack: Any, ts: str) -> str:
    [dm] = [
        d["text"] for d in stack.sandbox.dms() if d["metadata"] and f"p{ts.replace('.', '')}" in d["text"]
    ]
    return dm


def test_dashboards_explores_and_sql_runner_links_answer_for_the_sql_they_describe(dag, stack, post):
    filtered = post(
        "acme, October: "
        + _slack(f"<{HOST}/dashboards/801?Account+SID={ACME}&Date+Range=2026-10-01+to+2026-11-01&Region=EU>")
    )
    unfiltered = post(f"fraud spend: <{HOST}/dashboards/801|dashboard>")
    explore = post(f"delta: <{_slack(_explore_url(DELTA))}|explore>")
    sql_runner = post(f"hotel, from SQL Runner: <{HOST}/sql/sqlHotel1>")
    two_tiles = post(f"<{HOST}/dashboards/802|by country and by day>")
    merged_only = post(f"<{HOST}/dashboards/803>")
    looks = {account: post(f"<{HOST}/looks/{look}>") for account, look in SAMPLE_LOOKS.items()}
    stack.sandbox.reset_calls()

    assert _run(dag) == "success"

    answers = {account: thread_posts(stack, ts) for account, ts in looks.items()}
    assert all(len(a) == 1 and a[0].startswith("Approved, $") for a in answers.values()), answers
    assert len({a[0] for a in answers.values()}) == len(answers)  # each account its own amount
    # The URL's account and period (acme), not the tile's saved ones (cobalt, September).
    assert thread_posts(stack, filtered) == answers["acme"]
    assert [normalized(sql) for sql in _notebook_sql(filtered)] == [_sample_sql("verify_acme.sql")]
    # No query string: the filters' defaults (bolt, October).
    assert thread_posts(stack, unfiltered) == answers["bolt"]
    assert [normalized(sql) for sql in _notebook_sql(unfiltered)] == [_sample_sql("verify_bolt.sql")]
    assert thread_posts(stack, explore) == answers["delta"]
    assert [normalized(sql) for sql in _notebook_sql(explore)] == [_sample_sql("verify_delta.sql")]
    assert thread_posts(stack, sql_runner) == answers["hotel"]
    # SQL Runner's SQL as saved, character for character (bar the final newline).
    assert [sql.rstrip() for sql in _notebook_sql(sql_runner)] == [
        (SQL / "verify_hotel.sql").read_text().rstrip()
    ]

    # Which query ran, and where each filter value came from, for the ledger, DMs and requests page.
    run_id = ledger_entry(filtered)["run_id"]
    [job] = _resolved(run_id, filtered)["jobs"]
    sources = {f["field"]: (f["value"], f["source"]) for f in job["query"]["filters"]}
    assert sources["counters_by_billable_item.account_sid"] == (ACME, "url")
    assert sources["counters_by_billable_item.date_date"] == (PERIOD, "url")
    assert sources["billable_item_metadata_alex.product"] == ("%Authy%", "saved")
    assert (job["query"]["kind"], job["query"]["based_on"]) == ("dashboard_tile", "2001")
    assert f"{ACME} [url]" in job["query_text"]
    # ... and the ledger (so the requests page) names the query per link.
    assert ledger_entry(filtered)["queries"] == [job["query_text"]]
    [job] = _resolved(run_id, unfiltered)["jobs"]
    assert "AC00000000000000000000000000000b01 [default]" in job["query_text"]
    [job] = _resolved(run_id, sql_runner)["jobs"]
    assert job["query"] == {
        "kind": "sql_runner",
        "title": "SQL Runner query sqlHotel1",
        "slug": "sqlHotel1",
        "filters": [],
        "text": "SQL Runner query sqlHotel1: SQL Runner query sqlHotel1, its SQL as saved",
    }

    # Two Verify tiles: nothing computed, nothing posted; the operators are asked which tile.
    assert thread_posts(stack, two_tiles) == []
    assert ledger_entry(two_tiles)["outcome"] == "escalated"
    dm = _dm(stack, two_tiles)
    assert "2 tiles of" in dm
    assert "'Spend by country'" in dm
    assert "'Spend by day'" in dm
    assert "Which Look or tile holds the fraud spend?" in dm
    # The DM names each query the link gave, its filters and where their values came from.
    queries = [line for line in dm.splitlines() if line.startswith("• Query: ")]
    assert len(queries) == 2
    assert all("[default]" in line for line in queries)
    assert ledger_entry(two_tiles)["queries"] == [line.removeprefix("• Query: ") for line in queries]
    # Merged results and text only: named, and the DM asks for a Look instead.
    assert thread_posts(stack, merged_only) == []
    dm = _dm(stack, merged_only)
    assert "merged-results tile 'Verify and PSMS merged'" in dm
    assert "text tile 'Notes'" in dm

    # Looker: each tile with dashboard filters merged in, and the explore, became a created query,
    # sent without read-only fields or a client_id.
    created = stack.sandbox.calls(api="looker", method="POST /queries")
    bodies = [c["params"] for c in created]
    assert all("client_id" not in b and "id" not in b and "slug" not in b for b in bodies)
    assert {b["filters"]["counters_by_billable_item.account_sid"] for b in bodies} == {
        ACME,
        "AC00000000000000000000000000000b01",
        DELTA,
    }
    assert len(stack.sandbox.calls(api="looker", method="GET /sql_queries/{slug}")) == 1


def test_an_explore_url_without_fields_is_escalated_naming_what_is_missing(dag, stack, post):
    ts = post(
        f"<{HOST}/explore/billing/counters_by_billable_item?f[counters_by_billable_item.account_sid]={ACME}>"
    )

    assert _run(dag) == "success"

    assert thread_posts(stack, ts) == []
    assert "without the fields=" in _dm(stack, ts)
    assert stack.sandbox.calls(api="looker", method="POST /queries") == []


PSMS_NOTEBOOK = PROJECT_ROOT / "tests" / "data" / "psms_credit.ipynb"


def _notebook_names(ts: str) -> list[str]:
    """The notebooks a request ran, by name (papermill ran an instrumented copy: ``<name>.<hash>.ipynb``)."""
    return [
        Path(nbformat.read(path, as_version=4).metadata["papermill"]["input_path"]).name.split(".")[0]
        for path in ledger_entry(ts)["notebooks"]
    ]


def test_a_second_product_by_settings_alone(dag, stack, post):
    """Issue 29 item 7: a PSMS rule that names a notebook; Verify keeps its own; nothing else changes."""
    verify_rule = {"name": "verify", "pattern": "authy", "notebook": "verify_credit.ipynb"}
    psms_rule = {"name": "psms", "pattern": "Programmable Messaging", "notebook": str(PSMS_NOTEBOOK)}
    stack.use_settings(products=[verify_rule, psms_rule])
    psms = post(f"PSMS: <{HOST}/looks/106>")
    verify = post(f"Verify: <{HOST}/looks/102>")
    both = post(f"two products: <{HOST}/looks/106> and <{HOST}/looks/102>")

    assert _run(dag) == "success"

    assert thread_posts(stack, psms) == ["Approved, $42.50, exceptions"]
    assert _notebook_names(psms) == ["psms_credit"]
    [answer] = thread_posts(stack, verify)
    assert answer.startswith("Approved, $")
    assert answer != "Approved, $42.50, exceptions"
    assert _notebook_names(verify) == ["verify_credit"]
    # Not summed across products: escalated, both named.
    assert thread_posts(stack, both) == []
    dm = _dm(stack, both)
    assert "2 products' notebooks" in dm
    assert f"psms: {HOST}/looks/106" in dm
    assert f"verify: {HOST}/looks/102" in dm
