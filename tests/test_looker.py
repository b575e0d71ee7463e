"""LookerHook against the sandbox with the real looker_sdk: errors map to specific classes, and no error
makes the SDK reach past the connection's host (the socket-level guard in ``harness.testing.network``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from credit_bot.errors import RejectedRequest
from credit_bot.links import parse_looker_url
from credit_bot.looker import (
    LookerAuthError,
    LookerBadQuery,
    LookerError,
    LookerHook,
    LookerNotFound,
    LookerUnavailable,
)
from harness import PROJECT_ROOT
from harness.local import LOOKER_HOST
from harness.sandbox import Sandbox
from harness.testing.network import is_loopback, loopback_only

BASIC_SCENARIO = PROJECT_ROOT / "include" / "sandbox" / "scenarios" / "basic.json"
LOOKER_CDN = "static-a.cdn.looker.app"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with Sandbox.from_scenario(BASIC_SCENARIO) as sb:
        conn = {
            "conn_type": "http",
            "host": sb.looker_base_url,
            "login": sb.looker_client_id,
            "password": sb.looker_client_secret,
            "extra": {"timeout": 5},
        }
        monkeypatch.setenv("AIRFLOW_CONN_LOOKER_DEFAULT", json.dumps(conn))
        yield sb


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        pytest.param("127.0.0.1", True, id="ipv4-loopback"),
        pytest.param("127.8.9.10", True, id="loopback-range"),
        pytest.param("::1", True, id="ipv6-loopback"),
        pytest.param("localhost", True, id="localhost"),
        pytest.param(None, True, id="no-host"),
        pytest.param(LOOKER_CDN, False, id="looker-cdn"),
        pytest.param("10.0.0.1", False, id="private-range"),
        pytest.param(LOOKER_HOST, False, id="looker-instance-name"),
    ],
)
def test_loopback_guard_tells_local_from_outbound(host: str | None, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_the_stock_sdk_follows_the_documentation_url_of_a_404(sandbox: Sandbox) -> None:
    """The guard's own check: with the sandbox's real error shape, stock looker_sdk reaches for the CDN."""
    import looker_sdk
    from looker_sdk.error import SDKError
    from looker_sdk.rtl import api_settings

    class Settings(api_settings.ApiSettings):
        def __init__(self) -> None:
            super().__init__(filename="", env_prefix=None)
            self.base_url = sandbox.looker_base_url
            self.timeout = 5

        def read_config(self) -> api_settings.SettingsConfig:
            return {"client_id": sandbox.looker_client_id, "client_secret": sandbox.looker_client_secret}

    sdk = looker_sdk.init40(config_settings=Settings())
    with loopback_only() as outbound, pytest.raises(SDKError) as caught:
        sdk.look("424242")
    assert caught.value.documentation_url.endswith("/r/err/4.0/404/get/looks/:look_id")
    assert outbound.hosts == [LOOKER_CDN]


@pytest.mark.parametrize(
    ("url", "fault", "expected"),
    [
        pytest.param(f"https://{LOOKER_HOST}/looks/424242", None, LookerNotFound, id="look-404"),
        pytest.param(f"https://{LOOKER_HOST}/x/noSuchSlug", None, LookerNotFound, id="slug-404"),
        pytest.param(f"https://{LOOKER_HOST}/dashboards/424242", None, LookerNotFound, id="dashboard-404"),
        pytest.param(
            f"https://{LOOKER_HOST}/looks/123",
            ("GET /looks/{id}", "unauthorized", 2),
            LookerAuthError,
            id="look-401-twice",
        ),
        pytest.param(
            f"https://{LOOKER_HOST}/looks/123",
            ("GET /looks/{id}", "ratelimited", 10),
            LookerUnavailable,
            id="look-429",
        ),
        pytest.param(
            f"https://{LOOKER_HOST}/looks/123",
            ("GET /queries/{id}/run/{format}", "server_error", 10),
            LookerUnavailable,
            id="sql-500",
        ),
    ],
)
def test_no_looker_error_leaves_the_connections_host(
    sandbox: Sandbox, url: str, fault: tuple[str, str, int] | None, expected: type[LookerError]
) -> None:
    if fault is not None:
        method, kind, times = fault
        sandbox.inject("looker", method, kind, times=times, retry_after=0)
    hook = LookerHook()
    with loopback_only() as outbound, pytest.raises(expected):
        hook.resolve(parse_looker_url(url))
    assert outbound.attempts == []
    assert sandbox.calls(api="looker")  # the error did come from the sandbox


def test_the_hook_still_resolves_after_an_error(sandbox: Sandbox) -> None:
    hook = LookerHook()
    with loopback_only() as outbound:
        with pytest.raises(LookerNotFound, match=r"Look 424242 was not found in Looker \(404\)"):
            hook.resolve(parse_looker_url(f"https://{LOOKER_HOST}/looks/424242"))
        (resolved,) = hook.resolve(parse_looker_url(f"https://{LOOKER_HOST}/looks/123"))
    assert re.search(r"authy", resolved.sql, re.IGNORECASE)
    assert outbound.attempts == []


# ── Looker links as analysts share them (issue 29) ──────────────────────────────────────────────
ACCOUNT_URL = "AC00000000000000000000000000000003"
ACCOUNT_DEFAULT = "AC00000000000000000000000000000002"
ACCOUNT_SAVED = "AC00000000000000000000000000000001"
EXPLORE_URL = (
    f"https://{LOOKER_HOST}/explore/billing/counters_by_billable_item?fields=billable_items.iso_country_code,"
    f"counters_by_billable_item.total_sum&f[counters_by_billable_item.account_sid]={ACCOUNT_URL}"
    "&sorts=counters_by_billable_item.total_sum+desc&limit=500"
)


@pytest.mark.parametrize(
    ("url", "calls"),
    [
        pytest.param(
            f"https://{LOOKER_HOST}/looks/123",
            ["GET /looks/{id}", "GET /queries/{id}/run/{format}"],
            id="look",
        ),
        pytest.param(
            f"https://{LOOKER_HOST}/x/qAcme01",
            ["GET /queries/slug/{slug}", "GET /queries/{id}/run/{format}"],
            id="share",
        ),
        pytest.param(
            f"https://{LOOKER_HOST}/dashboards/7",
            ["GET /dashboards/{id}", "GET /queries/{id}/run/{format}", "GET /queries/{id}/run/{format}"],
            id="dashboard-without-filters",
        ),
        pytest.param(
            f"https://{LOOKER_HOST}/dashboards/8?Account+SID={ACCOUNT_URL}",
            ["GET /dashboards/{id}", "POST /queries", "GET /queries/{id}/run/{format}"],
            id="filtered-dashboard",
        ),
        pytest.param(EXPLORE_URL, ["POST /queries", "GET /queries/{id}/run/{format}"], id="expanded-explore"),
        pytest.param(f"https://{LOOKER_HOST}/sql/sqlAcme1", ["GET /sql_queries/{slug}"], id="sql-runner"),
    ],
)
def test_looker_calls_per_link_kind(sandbox: Sandbox, url: str, calls: list[str]) -> None:
    """What each kind of link costs in Looker API calls, after the login (the closing note of issue 29)."""
    hook = LookerHook()
    hook.resolve(parse_looker_url(f"https://{LOOKER_HOST}/looks/123"))  # logs in
    sandbox.reset_calls()
    hook.resolve(parse_looker_url(url))
    assert [c["method"] for c in sandbox.calls(api="looker")] == calls


@pytest.mark.parametrize(
    ("query_string", "account", "source"),
    [
        pytest.param(f"?Account+SID={ACCOUNT_URL}", ACCOUNT_URL, "url", id="url-value"),
        pytest.param("", ACCOUNT_DEFAULT, "default", id="default-value"),
        pytest.param(
            f"?Account+SID={ACCOUNT_URL}&Region=EU", ACCOUNT_URL, "url", id="unknown-url-filter-ignored"
        ),
        pytest.param("?Account+SID=", ACCOUNT_SAVED, "saved", id="empty-url-value-keeps-the-tiles"),
    ],
)
def test_a_dashboard_tile_gets_the_dashboard_filters_it_listens_to(
    sandbox: Sandbox, query_string: str, account: str, source: str
) -> None:
    [tile] = LookerHook().resolve(parse_looker_url(f"https://{LOOKER_HOST}/dashboards/8{query_string}"))
    assert f"(counters_by_billable_item.account_sid ) = '{account}'" in tile.sql
    assert "TIMESTAMP '2025-11-01'" in tile.sql  # the Date Range filter's default
    described = tile.describe()
    filters = {f["field"]: (f["value"], f["source"]) for f in described["filters"]}
    assert filters["counters_by_billable_item.account_sid"] == (account, source)
    assert filters["billable_item_metadata_alex.product"] == ("%Authy%", "saved")
    assert described["kind"] == "dashboard_tile"
    assert f"{account} [{source}]" in described["text"]
    assert "'Spend by country'" in described["text"]


def test_filters_the_dashboard_does_not_have_are_logged(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    LookerHook().resolve(parse_looker_url(f"https://{LOOKER_HOST}/dashboards/8?Region=EU"))
    # Airflow's hook logger may write straight to the console instead of through logging.
    assert "dashboard 8 has no filter 'Region'" in caplog.text + "".join(capfd.readouterr())


def test_created_queries_leave_read_only_fields_and_client_id_out(sandbox: Sandbox) -> None:
    LookerHook().resolve(parse_looker_url(f"https://{LOOKER_HOST}/dashboards/8?Account+SID={ACCOUNT_URL}"))
    [created] = sandbox.calls(api="looker", method="POST /queries")
    body = created["params"]
    assert (body["model"], body["view"]) == ("billing", "counters_by_billable_item")
    assert body["filters"]["counters_by_billable_item.account_sid"] == ACCOUNT_URL
    read_only = {"id", "slug", "can", "url", "share_url", "expanded_share_url", "has_table_calculations"}
    assert not (read_only | {"client_id"}) & set(body)


def test_an_expanded_explore_url_becomes_a_query(sandbox: Sandbox) -> None:
    [query] = LookerHook().resolve(parse_looker_url(EXPLORE_URL))
    assert f"(counters_by_billable_item.account_sid ) = '{ACCOUNT_URL}'" in query.sql
    assert query.describe()["filters"] == [
        {"field": "counters_by_billable_item.account_sid", "value": ACCOUNT_URL, "source": "url"}
    ]


@pytest.mark.parametrize(
    ("url", "expected", "message"),
    [
        pytest.param(
            f"https://{LOOKER_HOST}/explore/billing/counters_by_billable_item?fields=no_such.field",
            LookerError,
            "422",
            id="explore-unknown-field",
        ),
        pytest.param(
            f"https://{LOOKER_HOST}/explore/billing/counters_by_billable_item?fields=a.b&limit=lots",
            LookerBadQuery,
            "not a number",
            id="explore-bad-limit",
        ),
        pytest.param(
            f"https://{LOOKER_HOST}/sql/noSuchSlug", LookerNotFound, "SQL Runner query", id="sql-404"
        ),
    ],
)
def test_links_that_do_not_yield_a_query_say_why(
    sandbox: Sandbox, url: str, expected: type[LookerError], message: str
) -> None:
    with pytest.raises(expected, match=message) as caught:
        LookerHook().resolve(parse_looker_url(url))
    assert isinstance(caught.value, RejectedRequest)  # escalated once, never retried


def test_a_sql_runner_link_gives_its_sql_as_saved(sandbox: Sandbox) -> None:
    [query] = LookerHook().resolve(parse_looker_url(f"https://{LOOKER_HOST}/sql/sqlAcme1"))
    assert query.sql.startswith("SELECT SUM(total)")
    assert query.describe()["slug"] == "sqlAcme1"


def test_a_dashboard_without_a_query_tile_names_its_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    data = json.loads(BASIC_SCENARIO.read_text())
    data["looker"]["dashboards"] = [
        {
            "id": 9,
            "elements": [
                {"id": 91, "title": "Merged", "type": "vis", "merge_result_id": "m1"},
                {"id": 92, "title": "Read me", "type": "text"},
            ],
        }
    ]
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with Sandbox.from_dict(data, base_dir=BASIC_SCENARIO.parent) as sb:
        conn = {"conn_type": "http", "host": sb.looker_base_url, "login": sb.looker_client_id}
        monkeypatch.setenv(
            "AIRFLOW_CONN_LOOKER_DEFAULT", json.dumps({**conn, "password": sb.looker_client_secret})
        )
        with pytest.raises(LookerBadQuery, match=r"merged-results tile 'Merged', text tile 'Read me'"):
            LookerHook().resolve(parse_looker_url(f"https://{LOOKER_HOST}/dashboards/9"))
