"""Tests for credit_bot.links: finding Looker links in Slack text and classifying them."""

from __future__ import annotations

import time

import pytest

from credit_bot.links import (
    ExploreQuery,
    LinkKind,
    LookerLink,
    UnsupportedLookerLink,
    explore_query,
    find_urls,
    looker_urls,
    normalize_host,
    parse_looker_url,
    url_key,
)

HOST = "credit-sandbox.cloud.looker.com"
HOSTS = [HOST]
LOOK = f"https://{HOST}/looks/123"
EXPLORE = f"https://{HOST}/explore/billing/billable_items?qid=AbC123xyz&toggle=fil"
ZENDESK = "https://fake-support.zendesk.com/agent/tickets/4242"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"<{LOOK}|my look>", [LOOK], id="slack-link-with-label"),
        pytest.param(f"<{LOOK}>", [LOOK], id="slack-link-without-label"),
        pytest.param(f"credit please {LOOK} thanks", [LOOK], id="bare-url"),
        pytest.param(
            f"<https://{HOST}/explore/billing/billable_items?qid=AbC123xyz&amp;toggle=fil>",
            [EXPLORE],
            id="slack-link-amp-unescaped",
        ),
        pytest.param(
            f"see https://{HOST}/explore/billing/billable_items?qid=AbC123xyz&amp;toggle=fil now",
            [EXPLORE],
            id="bare-url-amp-unescaped",
        ),
        pytest.param(f"see {LOOK}.", [LOOK], id="trailing-period"),
        pytest.param(f"(see {LOOK}).", [LOOK], id="trailing-paren-and-period"),
        pytest.param(f"is it {LOOK}?!", [LOOK], id="trailing-question-exclamation"),
        pytest.param(f"*{LOOK}*", [LOOK], id="bold-markup"),
        pytest.param(f"{LOOK}, {ZENDESK};", [LOOK, ZENDESK], id="two-bare-urls-in-order"),
        pytest.param(f"<{LOOK}|a> and {LOOK} and <{LOOK}>", [LOOK], id="duplicates-removed"),
        pytest.param(
            f"<https://evil.example/looks/1|{LOOK}>",
            ["https://evil.example/looks/1"],
            id="label-url-is-not-a-link",
        ),
        pytest.param("<!channel> <!here> <@U123> <#C123|general>", [], id="mentions-never-links"),
        pytest.param("<!subteam^S123|@team> <mailto:a@example.com|mail>", [], id="non-http-markup"),
        pytest.param("ftp://example.com/file and www.example.com", [], id="no-http-scheme"),
        pytest.param("no links here at all", [], id="no-links"),
        pytest.param(f"ünïcødé 💸 {LOOK} 日本語", [LOOK], id="unicode-text"),
    ],
)
def test_find_urls(text: str, expected: list[str]) -> None:
    assert find_urls(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"<{LOOK}|look>", [LOOK], id="looker-link"),
        pytest.param(f"<{ZENDESK}|ticket> <{LOOK}>", [LOOK], id="zendesk-ignored"),
        pytest.param(f"<{ZENDESK}>", [], id="zendesk-only"),
        pytest.param(f"https://{HOST}.example.org/looks/1", [], id="lookalike-suffix"),
        pytest.param(f"https://evil{HOST}/looks/1", [], id="lookalike-prefix"),
        pytest.param(f"https://sub.{HOST}/looks/1", [], id="subdomain-not-allowed"),
        pytest.param(f"https://{HOST}@evil.example/looks/1", [], id="userinfo-trick-bare"),
        pytest.param(f"<https://{HOST}@evil.example/looks/1>", [], id="userinfo-trick-slack"),
        pytest.param(f"https://evil.example\\@{HOST}/looks/1", [], id="backslash-userinfo-trick"),
        pytest.param(
            f"https://someone@{HOST}/looks/1", [f"https://someone@{HOST}/looks/1"], id="userinfo-on-real-host"
        ),
        pytest.param(
            "https://CREDIT-SANDBOX.Cloud.Looker.com/looks/1",
            ["https://CREDIT-SANDBOX.Cloud.Looker.com/looks/1"],
            id="uppercase-host",
        ),
        pytest.param(f"https://{HOST}:443/looks/1", [f"https://{HOST}:443/looks/1"], id="with-port"),
        pytest.param(f"http://{HOST}/looks/1", [f"http://{HOST}/looks/1"], id="http"),
        pytest.param(f"HTTPS://{HOST}/looks/1", [f"HTTPS://{HOST}/looks/1"], id="uppercase-scheme"),
        pytest.param(f"https://{HOST}./looks/1", [f"https://{HOST}./looks/1"], id="trailing-dot-host"),
        pytest.param("<!channel> <@U123> <#C123|general>", [], id="mentions"),
        pytest.param(f"https://[::1/looks/1 and {LOOK}", [LOOK], id="malformed-ipv6-skipped"),
        pytest.param(f"https://{HOST}:notaport/looks/1", [f"https://{HOST}:notaport/looks/1"], id="bad-port"),
    ],
)
def test_looker_urls(text: str, expected: list[str]) -> None:
    assert looker_urls(text, HOSTS) == expected


@pytest.mark.parametrize(
    "hosts",
    [
        pytest.param([HOST], id="plain"),
        pytest.param([f"https://{HOST.upper()}:443/"], id="url-form"),
        pytest.param(["", "  ", HOST], id="blank-entries-ignored"),
    ],
)
def test_looker_urls_host_forms(hosts: list[str]) -> None:
    assert looker_urls(f"<{LOOK}>", hosts) == [LOOK]


def test_looker_urls_no_hosts_matches_nothing() -> None:
    assert looker_urls(f"<{LOOK}>", []) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(HOST, HOST, id="plain"),
        pytest.param("Credit-Sandbox.Cloud.Looker.COM", HOST, id="uppercase"),
        pytest.param(f"  {HOST}  ", HOST, id="whitespace"),
        pytest.param(f"https://{HOST}:443/", HOST, id="url-with-port"),
        pytest.param(f"{HOST}:19999", HOST, id="host-with-port"),
        pytest.param(f"{HOST}/looks/1", HOST, id="host-with-path"),
        pytest.param(f"{HOST}.", HOST, id="trailing-dot"),
        pytest.param("", "", id="empty"),
    ],
)
def test_normalize_host(raw: str, expected: str) -> None:
    assert normalize_host(raw) == expected


@pytest.mark.parametrize(
    ("url", "kind", "ref"),
    [
        pytest.param(LOOK, LinkKind.LOOK, "123", id="look"),
        pytest.param(f"https://{HOST}/looks/123?toggle=dat", LinkKind.LOOK, "123", id="look-with-query"),
        pytest.param(f"https://{HOST}/embed/looks/123", LinkKind.LOOK, "123", id="embed-look"),
        pytest.param(EXPLORE, LinkKind.EXPLORE, "AbC123xyz", id="explore-qid"),
        pytest.param(
            f"https://{HOST}/explore/m/v?toggle=fil&qid=Q1", LinkKind.EXPLORE, "Q1", id="explore-qid-second"
        ),
        pytest.param(f"https://{HOST}/embed/explore/m/v?qid=Q2", LinkKind.EXPLORE, "Q2", id="embed-explore"),
        pytest.param(f"https://{HOST}/x/ShortSlug9", LinkKind.SHORT, "ShortSlug9", id="share-link"),
        pytest.param(f"https://{HOST}/dashboards/42", LinkKind.DASHBOARD, "42", id="dashboard"),
        pytest.param(f"https://{HOST}/embed/dashboards/42", LinkKind.DASHBOARD, "42", id="embed-dashboard"),
        pytest.param(
            f"https://{HOST}/dashboards/42?Account+SID=AC1", LinkKind.DASHBOARD, "42", id="filtered-dashboard"
        ),
        pytest.param(f"https://{HOST}/sql/sqlSlug7", LinkKind.SQL_RUNNER, "sqlSlug7", id="sql-runner"),
        pytest.param(
            f"https://{HOST}/explore/billing/counters?fields=a.b,c.d&limit=10",
            LinkKind.EXPLORE_URL,
            "billing/counters",
            id="expanded-explore",
        ),
    ],
)
def test_parse_looker_url(url: str, kind: LinkKind, ref: str) -> None:
    link = parse_looker_url(url)
    assert link == LookerLink(url, kind, ref)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param(f"https://{HOST}/explore/m/v?toggle=fil", "qid", id="explore-without-qid"),
        pytest.param(
            f"https://{HOST}/explore/m/v?f[v.x]=1", "without the fields=", id="explore-without-fields"
        ),
        pytest.param(
            f"https://{HOST}/explore/m?fields=v.x", "model and an explore", id="explore-without-view"
        ),
        pytest.param(f"https://{HOST}/explore/m/v?qid=", "qid", id="explore-empty-qid"),
        pytest.param(f"https://{HOST}/looks/abc", "not a number", id="non-numeric-look"),
        pytest.param(f"https://{HOST}/looks/", "not a Look", id="look-without-id"),
        pytest.param(f"https://{HOST}/dashboards/billing::overview", "numeric", id="lookml-dashboard"),
        pytest.param(f"https://{HOST}/x/", "not a Look", id="share-without-slug"),
        pytest.param(f"https://{HOST}/browse/folders/5", "not a Look", id="folder"),
        pytest.param(f"https://{HOST}/", "not a Look", id="root"),
    ],
)
def test_parse_looker_url_unsupported(url: str, message: str) -> None:
    with pytest.raises(UnsupportedLookerLink, match=message):
        parse_looker_url(url)


def test_unsupported_link_is_a_value_error() -> None:
    assert issubclass(UnsupportedLookerLink, ValueError)


@pytest.mark.parametrize(
    "filler",
    [
        pytest.param("a" * 100_000, id="one-long-word"),
        pytest.param("word " * 20_000, id="many-words"),
        pytest.param("<https://x" * 10_000, id="unclosed-slack-links"),
        pytest.param("https://" * 12_500, id="repeated-schemes"),
    ],
)
def test_huge_message_is_fast(filler: str) -> None:
    text = f"{filler} <{LOOK}|look> {filler}"
    started = time.perf_counter()
    found = looker_urls(text, HOSTS)
    assert time.perf_counter() - started < 1.0
    assert LOOK in found


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        pytest.param(LOOK, f"{LOOK}/", True, id="trailing-slash"),
        pytest.param(LOOK, LOOK.replace("https://credit", "HTTPS://Credit"), True, id="scheme-and-host-case"),
        pytest.param(LOOK, LOOK.replace(HOST, f"{HOST}:443"), True, id="default-port"),
        pytest.param(LOOK, f"{LOOK}#vis", True, id="fragment"),
        pytest.param(LOOK, LOOK.replace(HOST, f"{HOST}:8443"), False, id="other-port"),
        pytest.param(LOOK, f"https://{HOST}/looks/1234", False, id="other-look"),
        pytest.param(EXPLORE, EXPLORE.replace("toggle=fil", "toggle=vis"), False, id="query-counts"),
        pytest.param(LOOK, LOOK.replace("/looks/", "/LOOKS/"), False, id="path-case-counts"),
    ],
)
def test_url_key_says_when_two_spellings_are_one_link(a: str, b: str, same: bool) -> None:
    assert (url_key(a) == url_key(b)) is same


def test_find_urls_counts_each_link_once_however_spelled() -> None:
    assert find_urls(f"<{LOOK}|a> <{LOOK}/> {LOOK.upper().replace('/LOOKS/', '/looks/')}") == [LOOK]


def test_dashboard_links_keep_their_filter_values_decoded() -> None:
    """Looker writes a filter's name and value URL-encoded (spaces as "+"); the link keeps them decoded."""
    link = parse_looker_url(
        f"https://{HOST}/dashboards/801?Account+SID=AC0000000000000000000000000000fa01&Date+Range=2026-10-01+to+2026-11-01"
    )
    assert dict(link.params) == {
        "Account SID": "AC0000000000000000000000000000fa01",
        "Date Range": "2026-10-01 to 2026-11-01",
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(
            "fields=v.a,v.total_sum&f[v.account]=AC1&f[v.date_date]=2026-10-01+to+2026-11-01"
            "&sorts=v.total_sum+desc&limit=500&toggle=fil",
            ExploreQuery(
                model="m",
                view="v",
                fields=("v.a", "v.total_sum"),
                filters=(("v.account", "AC1"), ("v.date_date", "2026-10-01 to 2026-11-01")),
                sorts=("v.total_sum desc",),
                limit="500",
            ),
            id="fields-filters-sorts-limit",
        ),
        pytest.param(
            "fields=v.a,v.b&pivots=v.b&fill_fields=v.b&query_timezone=UTC"
            "&dynamic_fields=%5B%7B%22table_calculation%22%3A%22x%22%7D%5D",
            ExploreQuery(
                model="m",
                view="v",
                fields=("v.a", "v.b"),
                pivots=("v.b",),
                fill_fields=("v.b",),
                dynamic_fields='[{"table_calculation":"x"}]',
                query_timezone="UTC",
            ),
            id="pivots-fill-dynamic-timezone",
        ),
        pytest.param("fields=v.a&f[v.note]=a%2Cb&f[v.empty]=", None, id="commas-and-empty-values-kept"),
    ],
)
def test_explore_query_from_an_expanded_url(query: str, expected: ExploreQuery | None) -> None:
    wanted = explore_query(parse_looker_url(f"https://{HOST}/explore/m/v?{query}"))
    if expected is None:
        assert wanted.filters == (("v.note", "a,b"), ("v.empty", ""))
    else:
        assert wanted == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param("fields=", "without the fields=", id="empty-fields"),
        pytest.param("fields=%2C", "without fields", id="only-a-comma"),
        pytest.param("fields=v.a&limit=many", "not a number", id="bad-limit"),
        pytest.param("fields=v.a&dynamic_fields=%5Bnope", "not JSON", id="bad-dynamic-fields"),
    ],
)
def test_explore_query_names_what_is_wrong(query: str, message: str) -> None:
    with pytest.raises(UnsupportedLookerLink, match=message):
        explore_query(parse_looker_url(f"https://{HOST}/explore/m/v?{query}"))
