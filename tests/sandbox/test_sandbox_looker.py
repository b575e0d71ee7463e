"""The Looker half of the sandbox, driven through the real looker_sdk 4.0 client over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from looker_sdk.error import ErrorDocHelper, SDKError
from looker_sdk.sdk.api40.methods import Looker40SDK

from harness import PROJECT_ROOT
from harness.sandbox import Sandbox
from harness.sandbox.looker_sql import UnknownField, generate_sql, normalized

MakeLooker = Callable[..., Looker40SDK]


def login_calls(sb: Sandbox) -> int:
    return len(sb.calls(api="looker", method="POST /login"))


def raw_login(sb: Sandbox) -> str:
    resp = requests.post(
        f"{sb.looker_base_url}/api/4.0/login",
        data={"client_id": sb.looker_client_id, "client_secret": sb.looker_client_secret},
        timeout=5,
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "Bearer"
    return body["access_token"]


def test_look_with_its_query(looker: Looker40SDK) -> None:
    look = looker.look("123")
    assert (look.id, look.title, look.query_id) == ("123", "Fraud spend Acme", "501")
    assert look.query is not None
    assert (look.query.slug, look.query.model, look.query.view) == (
        "qAcme01",
        "billing",
        "counters_by_billable_item",
    )
    assert look.query.fields == ["billable_items.iso_country_code", "counters_by_billable_item.total_sum"]


@pytest.mark.parametrize(
    "fetch",
    [
        pytest.param(lambda sdk: sdk.query("501"), id="by-id"),
        pytest.param(lambda sdk: sdk.query_for_slug("qAcme01"), id="by-slug"),
    ],
)
def test_query_by_id_and_slug(looker: Looker40SDK, fetch: Callable[[Looker40SDK], Any]) -> None:
    query = fetch(looker)
    assert (query.id, query.slug, query.model) == ("501", "qAcme01", "billing")
    assert query.share_url == "https://credit-sandbox.cloud.looker.com/x/qAcme01"


def test_run_query_as_sql_returns_the_sql_text(looker: Looker40SDK) -> None:
    sql = looker.run_query("501", "sql")
    assert isinstance(sql, str)
    assert sql.startswith("SELECT")
    assert "LIKE '%Authy%'" in sql


@pytest.mark.parametrize(
    ("result_format", "check"),
    [
        pytest.param(
            "json", lambda body: json.loads(body)[1]["billable_items.iso_country_code"] == "PK", id="json"
        ),
        pytest.param("csv", lambda body: body.splitlines()[1] == "ID,120.5", id="csv"),
        pytest.param("txt", lambda body: body.splitlines()[2] == "PK\t59.23", id="txt"),
    ],
)
def test_run_query_result_formats(
    looker: Looker40SDK, result_format: str, check: Callable[[str], bool]
) -> None:
    assert check(looker.run_query("501", result_format))


def test_dashboard_elements(looker: Looker40SDK) -> None:
    elements = {e.id: e for e in looker.dashboard("7").dashboard_elements}
    assert set(elements) == {"71", "72", "73"}
    vis = elements["71"]
    assert (vis.type, vis.query_id, vis.query.slug) == ("vis", "501", "qAcme01")
    assert vis.result_maker.query_id == "501"
    text = elements["72"]
    assert (text.type, text.query_id, text.look_id, text.result_maker) == ("text", None, None, None)
    saved = elements["73"]
    assert (saved.look_id, saved.look.query_id, saved.look.query.slug) == ("124", "502", "qPsms02")
    assert saved.result_maker.query.id == "502"


DOC = "https://cloud.google.com/looker/docs/r/err/4.0/404/get"


@pytest.mark.parametrize(
    ("call", "doc_url"),
    [
        pytest.param(lambda sdk: sdk.look("999"), f"{DOC}/looks/:look_id", id="look"),
        pytest.param(lambda sdk: sdk.look("abc"), f"{DOC}/looks/:look_id", id="look-non-numeric"),
        pytest.param(lambda sdk: sdk.query("999"), f"{DOC}/queries/:query_id", id="query"),
        pytest.param(lambda sdk: sdk.query_for_slug("nope"), f"{DOC}/queries/slug/:slug", id="slug"),
        pytest.param(
            lambda sdk: sdk.run_query("999", "sql"),
            f"{DOC}/queries/:query_id/run/:result_format",
            id="run",
        ),
        pytest.param(lambda sdk: sdk.dashboard("0"), f"{DOC}/dashboards/:dashboard_id", id="dashboard"),
    ],
)
def test_unknown_ids_are_404_sdk_errors_with_lookers_documentation_url(
    sandbox: Sandbox, looker: Looker40SDK, call: Callable[[Looker40SDK], Any], doc_url: str
) -> None:
    with pytest.raises(SDKError) as excinfo:
        call(looker)
    assert excinfo.value.message == "Not found"
    assert excinfo.value.documentation_url == doc_url
    # The shape looker_sdk's error-doc helper acts on (status in the third group, route after it).
    match = ErrorDocHelper.pattern.search(doc_url)
    assert match is not None
    assert match.group(3) == "404"
    assert sandbox.calls(api="looker")[-1]["status"] == 404


def test_bad_credentials_fail_at_login(sandbox: Sandbox, make_looker: MakeLooker) -> None:
    sdk = make_looker(sandbox, client_secret="not-the-sandbox-secret")
    with pytest.raises(SDKError) as excinfo:
        sdk.look("123")
    assert "Not found" in str(excinfo.value)
    assert [c["status"] for c in sandbox.calls(api="looker")] == [404]
    assert "client_secret" not in sandbox.calls(api="looker")[0]["params"]  # never logged


@pytest.mark.parametrize(
    ("ttl", "expected_logins"),
    [
        pytest.param(3600, 1, id="long-ttl-one-login"),
        # looker_sdk renews 10 s before expiry, so a 1 s token is renewed before every call.
        pytest.param(1, 3, id="short-ttl-login-per-call"),
    ],
)
def test_sdk_logs_in_again_when_token_expires(
    make_sandbox: Callable[..., Sandbox], make_looker: MakeLooker, ttl: int, expected_logins: int
) -> None:
    sb = make_sandbox(looker={"token_ttl_seconds": ttl})
    sdk = make_looker(sb)
    for _ in range(3):
        assert sdk.look("123").id == "123"
    assert login_calls(sb) == expected_logins


def test_revoked_token_gives_401_until_a_new_login(sandbox: Sandbox, make_looker: MakeLooker) -> None:
    sdk = make_looker(sandbox)
    assert sdk.look("123").id == "123"
    assert sandbox.expire_looker_tokens() == 1

    with pytest.raises(SDKError) as excinfo:
        sdk.look("123")

    assert excinfo.value.message == "Requires authentication."
    assert sandbox.calls(api="looker")[-1]["status"] == 401
    assert make_looker(sandbox).look("123").id == "123"  # a fresh login works again


def test_tokens_expire_server_side(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(looker={"token_ttl_seconds": 0.3})
    token = raw_login(sb)
    url = f"{sb.url}/api/4.0/looks/123"
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200
    time.sleep(0.35)
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 401


@pytest.mark.parametrize(
    ("header", "status"),
    [
        pytest.param("Bearer {token}", 200, id="bearer"),
        pytest.param("token {token}", 200, id="token-scheme"),
        pytest.param("Bearer sandbox-looker-token-unknown", 401, id="unknown-token"),
        pytest.param(None, 401, id="missing"),
    ],
)
def test_auth_header_schemes(sandbox: Sandbox, header: str | None, status: int) -> None:
    token = raw_login(sandbox)
    headers = {"Authorization": header.format(token=token)} if header else {}
    resp = requests.get(f"{sandbox.looker_base_url}/api/4.0/queries/501", headers=headers, timeout=5)
    assert resp.status_code == status
    if status == 401:
        assert resp.json()["message"] == "Requires authentication."


def test_logout_revokes_the_token(sandbox: Sandbox, make_looker: MakeLooker) -> None:
    sdk = make_looker(sandbox)
    assert sdk.look("123").id == "123"
    token = sdk.auth.token.access_token
    sdk.auth.logout()
    assert sandbox.calls(api="looker")[-1]["method"] == "DELETE /logout"
    assert sandbox.calls(api="looker")[-1]["status"] == 204
    resp = requests.get(
        f"{sandbox.url}/api/4.0/looks/123", headers={"Authorization": f"token {token}"}, timeout=5
    )
    assert resp.status_code == 401


@pytest.mark.parametrize(
    ("kind", "opts", "status"),
    [
        pytest.param("server_error", {"status": 503}, 503, id="server-error"),
        pytest.param("unauthorized", {}, 401, id="unauthorized"),
        pytest.param("not_found", {}, 404, id="not-found"),
        pytest.param("reset", {}, 0, id="reset"),
    ],
)
def test_faults_fail_one_call_then_recover(
    sandbox: Sandbox, looker: Looker40SDK, kind: str, opts: dict[str, Any], status: int
) -> None:
    sandbox.inject("looker", "GET /looks/{id}", kind, **opts)
    with pytest.raises(SDKError):
        looker.look("123")
    assert looker.look("123").id == "123"
    assert [c["status"] for c in sandbox.calls(method="GET /looks/{id}")] == [status, 200]


def test_wildcard_fault_hits_login_too(sandbox: Sandbox, looker: Looker40SDK) -> None:
    sandbox.inject("looker", "*", "server_error")
    with pytest.raises(SDKError):
        looker.look("123")
    assert sandbox.calls(api="looker")[0]["method"] == "POST /login"
    assert sandbox.calls(api="looker")[0]["status"] == 500


# ── created queries, SQL Runner, dashboard filters (issue 29) ───────────────────────────────────
def _write_query(account: str, **extra: Any) -> Any:
    from looker_sdk.sdk.api40 import models as models40

    return models40.WriteQuery(
        model="billing",
        view="counters_by_billable_item",
        fields=["billable_items.iso_country_code", "counters_by_billable_item.total_sum"],
        filters={
            "counters_by_billable_item.account_sid": account,
            "billable_item_metadata_alex.product": "%Authy%",
        },
        **extra,
    )


def test_a_created_querys_sql_reflects_its_filters(looker: Looker40SDK) -> None:
    first = looker.create_query(_write_query("AC00000000000000000000000000000002"))
    second = looker.create_query(_write_query("AC00000000000000000000000000000003"))
    assert first.id != second.id
    assert (first.model, first.view, first.slug) == ("billing", "counters_by_billable_item", f"sbx{first.id}")
    assert "= 'AC00000000000000000000000000000002'" in looker.run_query(first.id, "sql")
    assert "= 'AC00000000000000000000000000000003'" in looker.run_query(second.id, "sql")


def test_an_identical_query_comes_back_as_it_was_created(looker: Looker40SDK) -> None:
    """Looker: 'If you create a query that is exactly like an existing query then the existing query
    will be returned'; a client_id names one query only."""
    from looker_sdk.error import SDKError

    first = looker.create_query(_write_query("AC00000000000000000000000000000002", client_id="sbxClientA"))
    assert looker.create_query(_write_query("AC00000000000000000000000000000002")).id == first.id
    with pytest.raises(SDKError, match="already taken"):
        looker.create_query(_write_query("AC00000000000000000000000000000004", client_id="sbxClientA"))


def test_sql_runner_query(looker: Looker40SDK) -> None:
    query = looker.sql_query("sqlAcme1")
    assert (query.slug, query.model_name) == ("sqlAcme1", "billing")
    assert query.sql.startswith("SELECT SUM(total)")


def test_dashboard_filters_and_listeners(looker: Looker40SDK) -> None:
    dashboard = looker.dashboard("8")
    filters = {f.name: f for f in dashboard.dashboard_filters}
    assert filters["Account SID"].default_value == "AC00000000000000000000000000000002"
    assert filters["Date Range"].dimension == "counters_by_billable_item.date_date"
    tile, merged = dashboard.dashboard_elements
    [filterable] = tile.result_maker.filterables
    assert [(x.dashboard_filter_name, x.field) for x in filterable.listen] == [
        ("Account SID", "counters_by_billable_item.account_sid"),
        ("Date Range", "counters_by_billable_item.date_date"),
    ]
    assert tile.result_maker.query.filters["counters_by_billable_item.account_sid"] == (
        "AC00000000000000000000000000000001"
    )
    assert (merged.merge_result_id, merged.result_maker.merge_result_id, merged.query_id) == (
        "m82",
        "m82",
        None,
    )


SAMPLE_SQL = PROJECT_ROOT / "include" / "sandbox" / "sql"


def _demo_queries_with_sql_files() -> list[Any]:
    data = json.loads((PROJECT_ROOT / "include" / "sandbox" / "scenarios" / "demo.json").read_text())
    return [
        pytest.param(q, id=Path(q["sql_file"]).stem)
        for q in data["looker"]["queries"]
        if q.get("sql_file") and q.get("fields")
    ]


@pytest.mark.parametrize("query", _demo_queries_with_sql_files())
def test_generated_sql_is_the_sample_looks_sql(query: dict[str, Any]) -> None:
    """The generator writes, for a sample Look's fields and filters, the SQL of that Look's file (the
    template Looker generated for the team), whitespace aside."""
    expected = (SAMPLE_SQL / Path(query["sql_file"]).name).read_text()
    assert normalized(generate_sql(query)) == normalized(expected)


DATA_LOAD = "(counters_by_billable_item.data_load_date >=  COALESCE( {since}, date '2010-01-01') )"
DATE = "( counters_by_billable_item.date  )"
NAME = "billable_items.friendly_name"
PRODUCT = "(billable_item_metadata_alex.product )"


@pytest.mark.parametrize(
    ("filters", "where"),
    [
        pytest.param(
            {"counters_by_billable_item.date_date": "2026-10-01 to 2026-11-01"},
            f"WHERE (({DATE} >= (TIMESTAMP '2026-10-01') AND {DATE} < (TIMESTAMP '2026-11-01'))) AND "
            + DATA_LOAD.format(since="TIMESTAMP '2026-10-01'"),
            id="period",
        ),
        pytest.param(
            {"billable_item_metadata_alex.product": "%Authy%,%Verify%"},
            f"WHERE (({PRODUCT} LIKE '%Authy%' OR {PRODUCT} LIKE '%Verify%') AND "
            + DATA_LOAD.format(since="NULL")
            + ")",
            id="any-of-two-likes",
        ),
        pytest.param(
            {"counters_by_billable_item.account_sid": "AC1,AC2", NAME: "-%Say%"},
            "WHERE (counters_by_billable_item.account_sid ) IN ('AC1', 'AC2') AND "
            f"((UPPER(( {NAME}  )) NOT LIKE UPPER('%Say%') OR ( {NAME}  ) IS NULL) AND "
            + DATA_LOAD.format(since="NULL")
            + ")",
            id="in-and-not-like",
        ),
        pytest.param(
            {"counters_by_billable_item.account_sid": "O'Brien"},
            "WHERE (counters_by_billable_item.account_sid ) = 'O''Brien' AND",
            id="quote-doubled",
        ),
    ],
)
def test_generated_where_clauses(filters: dict[str, str], where: str) -> None:
    query = {
        "view": "counters_by_billable_item",
        "fields": ["counters_by_billable_item.total_sum"],
        "filters": filters,
    }
    assert where in generate_sql(query)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param(
            {"view": "other", "fields": ["a.b"]},
            "explore 'counters_by_billable_item' only",
            id="other-explore",
        ),
        pytest.param(
            {"view": "counters_by_billable_item", "fields": ["a.b"]}, "no field 'a.b'", id="unknown-field"
        ),
        pytest.param(
            {
                "view": "counters_by_billable_item",
                "fields": ["counters_by_billable_item.total_sum"],
                "filters": {"counters_by_billable_item.date_date": "last 7 days"},
            },
            "YYYY-MM-DD to YYYY-MM-DD",
            id="relative-date",
        ),
    ],
)
def test_the_generator_refuses_what_it_cannot_write(query: dict[str, Any], message: str) -> None:
    with pytest.raises(UnknownField, match=message):
        generate_sql(query)
