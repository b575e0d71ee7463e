"""Looker: a hook on the ``looker_default`` connection, and link → SQL resolution through ``looker_sdk``.

The connection holds the Looker base URL (host), the API client id (login) and client secret
(password); extras ``timeout`` (seconds) and ``verify_ssl`` are honoured. ``looker_sdk`` logs in
once and renews its token when it expires; when Looker revokes a token early (401), the hook
drops it and retries the call once with a fresh login. The hook talks to the connection's host
only: it never lets the SDK follow an error's documentation link to Looker's CDN.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from credit_bot.links import LinkKind, LookerLink, UnsupportedLookerLink, explore_query
from credit_bot.looker_results import (
    MAX_SQL_CHARS,
    AppliedFilter,
    FilterSource,
    LookerAuthError,
    LookerBadQuery,
    LookerError,
    LookerNotFound,
    LookerRefused,
    LookerUnavailable,
    QueryKind,
    ResolvedQuery,
)

__all__ = [
    "AppliedFilter",
    "FilterSource",
    "LookerAuthError",
    "LookerBadQuery",
    "LookerError",
    "LookerHook",
    "LookerNotFound",
    "LookerRefused",
    "LookerUnavailable",
    "QueryKind",
    "ResolvedQuery",
]

if TYPE_CHECKING:
    from looker_sdk.rtl.serialize import TDeserializeReturn, TStructure
    from looker_sdk.sdk.api40 import models as models40
    from looker_sdk.sdk.api40.methods import Looker40SDK

# Parts of a saved query that make its SQL, i.e. everything create_query needs to make the same
# query again. Read-only fields (id, slug, url, can, …) are Looker's to set, and client_id must
# be unique per query, so neither is sent.
_QUERY_BODY = (
    "fields",
    "pivots",
    "fill_fields",
    "filter_expression",
    "sorts",
    "limit",
    "column_limit",
    "total",
    "row_total",
    "subtotals",
    "dynamic_fields",
    "query_timezone",
)


LOOKER_CONN_ID = "looker_default"


def deserialize_without_error_docs(data: str, structure: TStructure) -> TDeserializeReturn:
    """looker_sdk's own deserializer, with the documentation links of error bodies dropped.

    On every error response looker_sdk (``APIMethods._return``) passes the body's
    ``documentation_url`` and each ``errors[].documentation_url`` to ``ErrorDocHelper.parse_and_lookup``;
    for Looker's real links (``…/looker/docs/r/err/4.0/404/get/looks/:look_id``) that downloads an
    error-code index and a Markdown page from ``static-a.cdn.looker.app`` with module-level
    ``requests.get`` and no timeout — outside the SDK's session, its timeout and our retries. Behind
    a firewall that drops packets, every Looker 401/404/429/5xx would then stall its task for minutes
    (and a null link, which the spec allows, raises TypeError there). The SDK takes its deserializer
    as a constructor argument, so this instance is changed and nothing global is patched; with no
    link left the helper matches nothing and returns at once. The bot never shows those documents.
    """
    from looker_sdk import error
    from looker_sdk.rtl import serialize

    value = serialize.deserialize40(data=data, structure=structure)
    if isinstance(value, error.SDKError):
        value.documentation_url = ""
        for detail in value.errors or []:
            detail.documentation_url = ""
    return value


def _checked_sql(sql: str | bytes | None, what: str, link: str) -> str:
    if isinstance(sql, bytes):
        sql = sql.decode("utf-8", errors="replace")
    if not sql or not sql.strip():
        raise LookerBadQuery(f"{what} behind {link} has no SQL")
    if len(sql) > MAX_SQL_CHARS:
        raise LookerBadQuery(f"{what} behind {link} has {len(sql):,} characters of SQL; refusing")
    return sql


def _saved_filters(query: models40.Query | None) -> tuple[AppliedFilter, ...]:
    filters = (query.filters if query else None) or {}
    return tuple(AppliedFilter(field, str(value), FilterSource.SAVED) for field, value in filters.items())


class LookerHook(BaseHook):
    """Talks to the Looker API 4.0 with the credentials of an Airflow connection."""

    conn_name_attr = "looker_conn_id"
    default_conn_name = LOOKER_CONN_ID
    conn_type = "looker"
    hook_name = "Looker (CreditBot)"

    def __init__(self, *, looker_conn_id: str = default_conn_name, timeout: int | None = None) -> None:
        super().__init__()
        self.looker_conn_id = looker_conn_id
        self.timeout = timeout
        self._status = threading.local()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {"host": "Base URL", "login": "Client ID", "password": "Client secret"},
            "placeholders": {"host": "https://example.cloud.looker.com", "extra": '{"timeout": 60}'},
        }

    @cached_property
    def sdk(self) -> Looker40SDK:
        import requests.adapters
        from looker_sdk.rtl import api_settings, auth_session, requests_transport, serialize
        from looker_sdk.sdk.api40.methods import Looker40SDK
        from urllib3.util.retry import Retry

        conn = self.get_connection(self.looker_conn_id)
        if not conn.host:
            raise LookerAuthError(f"connection {self.looker_conn_id!r} has no host (the Looker base URL)")
        base_url = conn.host if "://" in conn.host else f"https://{conn.host}"
        if conn.port:
            base_url = f"{base_url.rstrip('/')}:{conn.port}"
        extra = conn.extra_dejson
        timeout = self.timeout or int(extra.get("timeout", 60))
        verify_ssl = str(extra.get("verify_ssl", "true")).lower() not in ("false", "0", "no")
        login, password = conn.login or "", conn.password or ""

        class ConnectionSettings(api_settings.ApiSettings):
            """Settings from the Airflow connection instead of looker.ini or the environment."""

            def __init__(self) -> None:
                self.base_url = base_url.rstrip("/")
                self.verify_ssl = verify_ssl
                self.timeout = timeout
                self.headers = {"Content-Type": "application/json"}
                self.agent_tag = "credit-bot"
                self.filename = ""
                self.section = None
                self.env_prefix = None

            def read_config(self) -> api_settings.SettingsConfig:
                return {"client_id": login, "client_secret": password}

        # looker_sdk.init40's wiring, with our deserializer for API calls (deserialize_without_error_docs);
        # login errors never reach the error-doc helper (AuthSession raises them from the raw body).
        settings = ConnectionSettings()
        settings.is_configured()  # type: ignore[no-untyped-call]  # looker_sdk leaves it unannotated
        transport = requests_transport.RequestsTransport.configure(settings)
        sdk = Looker40SDK(
            auth_session.AuthSession(settings, transport, serialize.deserialize40, "4.0"),
            deserialize_without_error_docs,
            serialize.serialize40,
            transport,
            "4.0",
        )
        session = transport.session  # type: ignore[attr-defined]
        # Let urllib3 retry idempotent GETs on 5xx/resets a couple of times, with backoff.
        retry = Retry(
            total=2,
            backoff_factor=0.5,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=["GET"],
            raise_on_status=False,
        )
        adapter = requests.adapters.HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.hooks["response"].append(self._remember_status)
        return sdk

    def _remember_status(self, response: Any, *args: Any, **kwargs: Any) -> None:
        # looker_sdk's SDKError does not carry the HTTP status, so keep it from the response.
        self._status.code = response.status_code

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        """Run an SDK call, mapping failures to specific errors; on 401, log in again once."""
        from looker_sdk import error
        from looker_sdk.rtl import auth_token

        for attempt in (1, 2):
            if not self.sdk.auth.is_authenticated:
                self._login()
            self._status.code = None
            try:
                return fn(*args)
            except error.SDKError as exc:
                status = self._status.code
                if status == 401 and attempt == 1:
                    self.log.info("Looker token rejected (401); logging in again")
                    self.sdk.auth.token = auth_token.AuthToken()
                    continue
                raise self._classify(what, status, exc) from None
        raise AssertionError("unreachable")

    def _login(self) -> None:
        from looker_sdk import error

        self._status.code = None
        try:
            self.sdk.auth.authenticate({})
        except error.SDKError as exc:
            raise self._classify("login", self._status.code, exc) from None

    def _classify(self, what: str, status: int | None, exc: Exception) -> LookerError:
        message = getattr(exc, "message", "") or str(exc).strip()
        message = message.strip().splitlines()[0][:200] if message.strip() else "no details"
        if status is None:
            return LookerUnavailable(f"Looker did not answer for {what}: {message}")
        if status == 401:
            return LookerAuthError(
                f"Looker rejected the credentials of connection {self.looker_conn_id!r} (401) for {what}"
            )
        if status == 404:
            if what == "login":
                return LookerAuthError(
                    f"Looker login failed for connection {self.looker_conn_id!r}: check client id and secret"
                )
            return LookerNotFound(f"{what} was not found in Looker (404), or the API user cannot see it")
        if status >= 500 or status == 429:
            return LookerUnavailable(f"Looker answered {status} for {what}: {message}")
        return LookerRefused(f"Looker answered {status} for {what}: {message}")

    def _sql(
        self,
        link: str,
        query_id: str,
        title: str,
        kind: str,
        *,
        slug: str | None = None,
        based_on: str | None = None,
        filters: tuple[AppliedFilter, ...] = (),
    ) -> ResolvedQuery:
        sql = self._call(f"the SQL of query {query_id}", self.sdk.run_query, query_id, "sql")
        return ResolvedQuery(
            link=link,
            query_id=str(query_id),
            title=title,
            sql=_checked_sql(sql, f"query {query_id}", link),
            kind=kind,
            slug=slug,
            based_on=based_on,
            filters=filters,
        )

    def resolve(self, link: LookerLink) -> list[ResolvedQuery]:
        """The SQL behind a link: one query for a Look, explore, share or SQL Runner link; one per data
        tile of a dashboard, with the dashboard's filters applied as Looker applies them."""
        if link.kind is LinkKind.LOOK:
            look = self._call(f"Look {link.ref}", self.sdk.look, link.ref)
            if not look.query_id:
                raise LookerBadQuery(f"Look {link.ref} has no query")
            saved = _saved_filters(look.query)
            title = f"Look {link.ref}" + (f" {look.title!r}" if look.title else "")
            return [self._sql(link.url, str(look.query_id), title, QueryKind.LOOK, filters=saved)]
        if link.kind in (LinkKind.EXPLORE, LinkKind.SHORT):
            query = self._call(f"saved query {link.ref}", self.sdk.query_for_slug, link.ref)
            return [
                self._sql(
                    link.url,
                    str(query.id),
                    f"query {link.ref}",
                    QueryKind.SAVED_QUERY,
                    slug=link.ref,
                    filters=_saved_filters(query),
                )
            ]
        if link.kind is LinkKind.EXPLORE_URL:
            return [self._explore_url(link)]
        if link.kind is LinkKind.SQL_RUNNER:
            return [self._sql_runner(link)]
        if link.kind is LinkKind.DASHBOARD:
            return self._dashboard(link)
        raise LookerBadQuery(f"unsupported link kind {link.kind}")

    def _explore_url(self, link: LookerLink) -> ResolvedQuery:
        from looker_sdk.sdk.api40 import models as models40

        try:
            wanted = explore_query(link)
        except UnsupportedLookerLink as exc:
            raise LookerBadQuery(str(exc)) from None
        body = models40.WriteQuery(
            model=wanted.model,
            view=wanted.view,
            fields=list(wanted.fields),
            filters=dict(wanted.filters) or None,
            sorts=list(wanted.sorts) or None,
            limit=wanted.limit,
            pivots=list(wanted.pivots) or None,
            fill_fields=list(wanted.fill_fields) or None,
            dynamic_fields=wanted.dynamic_fields,
            query_timezone=wanted.query_timezone,
        )
        created = self._call(f"a query for explore {link.ref}", self.sdk.create_query, body)
        filters = tuple(AppliedFilter(f, v, FilterSource.URL) for f, v in wanted.filters)
        return self._sql(
            link.url, str(created.id), f"explore {link.ref}", QueryKind.EXPLORE_URL, filters=filters
        )

    def _sql_runner(self, link: LookerLink) -> ResolvedQuery:
        query = self._call(f"SQL Runner query {link.ref}", self.sdk.sql_query, link.ref)
        sql = _checked_sql(query.sql, f"SQL Runner query {link.ref}", link.url)
        return ResolvedQuery(
            link=link.url,
            query_id=link.ref,
            title=f"SQL Runner query {link.ref}",
            sql=sql,
            kind=QueryKind.SQL_RUNNER,
            slug=link.ref,
        )

    def _dashboard(self, link: LookerLink) -> list[ResolvedQuery]:
        dashboard = self._call(f"dashboard {link.ref}", self.sdk.dashboard, link.ref)
        by_name = {f.name: f for f in dashboard.dashboard_filters or [] if f.name}
        from_url = dict(link.params)
        for name in from_url.keys() - by_name.keys():
            # Looker ignores a filter its dashboard does not have; so do we, visibly.
            self.log.warning(
                "dashboard %s has no filter %r (in the link's URL); ignored as Looker does", link.ref, name
            )
        resolved = []
        other_tiles = []
        for element in dashboard.dashboard_elements or []:
            name = repr(element.title or element.title_text or f"#{element.id}")
            title = f"dashboard {link.ref} tile {name}"
            maker = element.result_maker
            look = element.look
            query = (maker.query if maker else None) or element.query or (look.query if look else None)
            query_id = (
                (maker.query_id if maker else None) or element.query_id or (look.query_id if look else None)
            )
            if not query_id:
                merged_results = (maker and maker.merge_result_id) or element.merge_result_id
                other_tiles.append(
                    f"{'merged-results' if merged_results else element.type or 'other'} tile {name}"
                )
                continue
            if query is None:
                query = self._call(f"query {query_id} of {title}", self.sdk.query, str(query_id))
            resolved.append(self._tile(link, title, str(query_id), query, maker, by_name, from_url))
        if not resolved:
            tiles = ", ".join(other_tiles) or "no tiles at all"
            raise LookerBadQuery(
                f"dashboard {link.ref} has no tile with a query of its own ({tiles}); "
                "send the Look or explore link of the fraud spend instead"
            )
        return resolved

    def _tile(
        self,
        link: LookerLink,
        title: str,
        query_id: str,
        query: models40.Query,
        maker: models40.ResultMakerWithIdVisConfigAndDynamicFields | None,
        by_name: dict[str, models40.DashboardFilter],
        from_url: dict[str, str],
    ) -> ResolvedQuery:
        """One data tile's SQL with the dashboard filters it listens to merged into its own."""
        from looker_sdk.sdk.api40 import models as models40

        saved = dict(query.filters or {})
        applied = {
            field: AppliedFilter(field, str(value), FilterSource.SAVED) for field, value in saved.items()
        }
        for filterable in (maker.filterables if maker else None) or []:
            for listen in filterable.listen or []:
                dashboard_filter = by_name.get(listen.dashboard_filter_name or "")
                if dashboard_filter is None or not listen.field:
                    continue
                if dashboard_filter.name in from_url:
                    value, source = from_url[dashboard_filter.name], FilterSource.URL
                else:
                    value, source = dashboard_filter.default_value or "", FilterSource.DEFAULT
                if value:  # an empty dashboard filter ("is any value") leaves the tile's own filter
                    applied[listen.field] = AppliedFilter(listen.field, value, source)
        merged = {field: f.value for field, f in applied.items()}
        filters = tuple(applied.values())
        if merged == {k: str(v) for k, v in saved.items()}:
            # Nothing to merge: the saved query is the one a person sees; no new query needed.
            return self._sql(link.url, query_id, title, QueryKind.DASHBOARD_TILE, filters=filters)
        body = models40.WriteQuery(
            model=query.model,
            view=query.view,
            filters=merged,
            **{name: getattr(query, name) for name in _QUERY_BODY if getattr(query, name, None) is not None},
        )
        created = self._call(f"the filtered query of {title}", self.sdk.create_query, body)
        return self._sql(
            link.url, str(created.id), title, QueryKind.DASHBOARD_TILE, based_on=query_id, filters=filters
        )

    def test_connection(self) -> tuple[bool, str]:
        try:
            me = self._call("the API user", self.sdk.me)
        except LookerError as exc:
            return False, str(exc)
        return True, f"Connected to Looker as user {me.id}"
