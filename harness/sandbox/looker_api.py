"""Emulated Looker API 4.0: login/logout with expiring tokens, Looks, queries (created, and run as SQL too),
SQL Runner queries, dashboards with their filters and each tile's listeners."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from harness.sandbox.faults import Fault
from harness.sandbox.looker_sql import UnknownField, generate_sql
from harness.sandbox.scenario import LookerScenario
from harness.sandbox.wire import Reply, bearer_token

# Real Looker's error bodies link to ".../looker/docs/r/err/<api version>/<status>/<verb>/<route>", the route
# in Rails form (":look_id"), e.g. ".../r/err/4.0/404/get/looks/:look_id" (looker-open-source/sdk-codegen
# PR 1440 and issue 1476 quote such bodies). looker_sdk's ErrorDocHelper matches that pattern and then
# downloads an error-code index from Looker's CDN, so the sandbox sends exactly this shape.
DOC_URL_PREFIX = "https://cloud.google.com/looker/docs/r/err/"
API_VERSION = "4.0"

_RESULT_FORMATS = frozenset({"sql", "json", "csv", "txt"})

Handler = Callable[[dict[str, str], dict[str, Any], str | None], Reply]


def documentation_url(status: int, verb: str, spec_path: str) -> str:
    """Looker's error documentation link for ``verb`` on ``spec_path`` (OpenAPI form, "/looks/{look_id}")."""
    route = re.sub(r"\{(\w+)\}", r":\1", spec_path)
    return f"{DOC_URL_PREFIX}{API_VERSION}/{status}/{verb.lower()}{route}"


def looker_error(
    status: int,
    message: str,
    verb: str,
    spec_path: str,
    headers: dict[str, str] | None = None,
) -> Reply:
    """Looker's error body, the spec's ``Error`` schema: ``{"message", "documentation_url"}``."""
    body = {"message": message, "documentation_url": documentation_url(status, verb, spec_path)}
    return Reply.json(body, status=status, headers=headers)


NOT_FOUND_MESSAGE = "Not found"
UNAUTHORIZED_MESSAGE = "Requires authentication."
# Ids of queries created through the API start here, well apart from the scenarios' ids.
FIRST_CREATED_QUERY_ID = 90001
# What makes two queries the same query (create_query returns the existing one then).
_QUERY_IDENTITY = (
    "model",
    "view",
    "fields",
    "pivots",
    "fill_fields",
    "filters",
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


@dataclass(frozen=True)
class Route:
    """A matched endpoint: its template name (as recorded in the call log) and what answers it."""

    method: str
    handler: Handler
    args: dict[str, str]
    needs_auth: bool
    verb: str
    spec_path: str  # the operation's path in Looker's OpenAPI spec, e.g. "/looks/{look_id}"


class LookerFailure(Exception):
    """An endpoint's error answer; ``LookerApi.handle`` turns it into Looker's error body for the route.

    ``errors`` (field, code, message) make it a 422 ``ValidationError`` body.
    """

    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


class LookerApi:
    """State of the emulated Looker instance plus the endpoint handlers."""

    def __init__(self, scenario: LookerScenario) -> None:
        self.scenario = scenario
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._queries = {str(q["id"]): q for q in scenario.queries}
        self._slugs = {str(q["slug"]): q for q in scenario.queries if q.get("slug")}
        self._looks = {str(look["id"]): look for look in scenario.looks}
        self._dashboards = {str(d["id"]): d for d in scenario.dashboards}
        self._sql_queries = {str(q["slug"]): q for q in scenario.sql_queries}
        self._next_query_id = itertools.count(FIRST_CREATED_QUERY_ID)
        self._client_ids: dict[str, str] = {}  # client_id -> query id
        # (verb, pattern, call-log name, spec path, handler, needs auth)
        self._routes: list[tuple[str, re.Pattern[str], str, str, Handler, bool]] = [
            ("POST", re.compile(r"/login"), "POST /login", "/login", self._login, False),
            ("DELETE", re.compile(r"/logout"), "DELETE /logout", "/logout", self._logout, True),
            ("GET", re.compile(r"/versions"), "GET /versions", "/versions", self._versions, False),
            ("GET", re.compile(r"/user"), "GET /user", "/user", self._me, True),
            (
                "GET",
                re.compile(r"/looks/(?P<id>[^/]+)"),
                "GET /looks/{id}",
                "/looks/{look_id}",
                self._look,
                True,
            ),
            (
                "GET",
                re.compile(r"/looks/(?P<id>[^/]+)/run/(?P<format>[^/]+)"),
                "GET /looks/{id}/run/{format}",
                "/looks/{look_id}/run/{result_format}",
                self._run_look,
                True,
            ),
            (
                "GET",
                re.compile(r"/queries/slug/(?P<slug>[^/]+)"),
                "GET /queries/slug/{slug}",
                "/queries/slug/{slug}",
                self._query_for_slug,
                True,
            ),
            ("POST", re.compile(r"/queries"), "POST /queries", "/queries", self._create_query, True),
            (
                "GET",
                re.compile(r"/sql_queries/(?P<slug>[^/]+)"),
                "GET /sql_queries/{slug}",
                "/sql_queries/{slug}",
                self._sql_query,
                True,
            ),
            (
                "GET",
                re.compile(r"/queries/(?P<id>[^/]+)"),
                "GET /queries/{id}",
                "/queries/{query_id}",
                self._query,
                True,
            ),
            (
                "GET",
                re.compile(r"/queries/(?P<id>[^/]+)/run/(?P<format>[^/]+)"),
                "GET /queries/{id}/run/{format}",
                "/queries/{query_id}/run/{result_format}",
                self._run_query,
                True,
            ),
            (
                "GET",
                re.compile(r"/dashboards/(?P<id>[^/]+)"),
                "GET /dashboards/{id}",
                "/dashboards/{dashboard_id}",
                self._dashboard,
                True,
            ),
        ]

    # ---- HTTP entry points -------------------------------------------------------------------------

    def resolve(self, verb: str, path: str) -> Route | None:
        """Match ``path`` (starting at "/api/...") to an endpoint; None when Looker has no such route."""
        if path.startswith(f"/api/{API_VERSION}/"):
            rest = path[len(f"/api/{API_VERSION}") :]
        elif path == "/api/logout":
            # looker_sdk logs out at "<base_url>/api/logout", without the version.
            rest = "/logout"
        else:
            return None
        rest = rest.rstrip("/") or "/"
        for route_verb, pattern, name, spec_path, handler, needs_auth in self._routes:
            match = pattern.fullmatch(rest)
            if match and route_verb == verb:
                args = {k: unquote(v) for k, v in match.groupdict().items()}
                return Route(
                    method=name,
                    handler=handler,
                    args=args,
                    needs_auth=needs_auth,
                    verb=verb,
                    spec_path=spec_path,
                )
        return None

    @property
    def operations(self) -> list[tuple[str, str]]:
        """Every emulated operation as (verb, spec path): what the contract tests cover."""
        return [(verb, spec_path) for verb, _, _, spec_path, _, _ in self._routes]

    def handle(self, route: Route, params: dict[str, Any], headers: dict[str, str]) -> Reply:
        """Answer one matched call, enforcing authentication where Looker does."""
        token = bearer_token(headers, scheme_names=("token", "bearer"))
        try:
            if route.needs_auth and not self._token_valid(token):
                raise LookerFailure(401, UNAUTHORIZED_MESSAGE)
            return route.handler(route.args, params, token)
        except LookerFailure as failure:
            if failure.errors is not None:
                doc = documentation_url(failure.status, route.verb, route.spec_path)
                errors = [{**e, "documentation_url": doc} for e in failure.errors]
                body = {"message": failure.message, "errors": errors, "documentation_url": doc}
                return Reply.json(body, status=failure.status)
            return looker_error(failure.status, failure.message, route.verb, route.spec_path)

    @staticmethod
    def fault_reply(fault: Fault, route: Route) -> Reply:
        """What Looker sends for an injected fault (``delay`` and ``reset`` are handled by the server)."""
        verb, spec_path = route.verb, route.spec_path
        if fault.kind == "server_error":
            return looker_error(int(fault.opts.get("status", 500)), "Internal server error", verb, spec_path)
        if fault.kind == "unauthorized":
            return looker_error(401, UNAUTHORIZED_MESSAGE, verb, spec_path)
        if fault.kind == "not_found":
            return looker_error(404, NOT_FOUND_MESSAGE, verb, spec_path)
        if fault.kind == "ratelimited":
            retry_after = str(int(fault.opts.get("retry_after", 1)))
            return looker_error(
                429, "Too many requests", verb, spec_path, headers={"Retry-After": retry_after}
            )
        raise ValueError(f"fault kind {fault.kind!r} has no canned Looker reply")

    # ---- Python control API ------------------------------------------------------------------------

    def expire_tokens(self) -> int:
        """Revoke every issued token server-side; returns how many were live."""
        with self._lock:
            count = len(self._tokens)
            self._tokens.clear()
            return count

    # ---- endpoints ---------------------------------------------------------------------------------

    def _login(self, args: dict[str, str], params: dict[str, Any], token: str | None) -> Reply:
        s = self.scenario
        client_id = str(params.get("client_id") or "")
        client_secret = str(params.get("client_secret") or "")
        # Constant-time comparison, as any credential check should be; Looker answers bad credentials 404.
        if not (
            secrets.compare_digest(client_id, s.client_id)
            and secrets.compare_digest(client_secret, s.client_secret)
        ):
            raise LookerFailure(404, NOT_FOUND_MESSAGE)
        new_token = f"sandbox-looker-token-{secrets.token_hex(12)}"
        ttl = float(s.token_ttl_seconds)
        with self._lock:
            self._tokens[new_token] = time.monotonic() + ttl
        return Reply.json(
            {
                "access_token": new_token,
                "token_type": "Bearer",
                "expires_in": max(1, math.ceil(ttl)),
                "refresh_token": None,
            }
        )

    def _logout(self, args: dict[str, str], params: dict[str, Any], token: str | None) -> Reply:
        with self._lock:
            self._tokens.pop(token or "", None)
        return Reply.empty(204)

    def _versions(self, args: dict[str, str], params: dict[str, Any], token: str | None) -> Reply:
        return Reply.json(
            {
                "looker_release_version": "25.0.0",
                "current_version": {"version": API_VERSION, "full_version": "4.0.25.0", "status": "current"},
                "supported_versions": [
                    {"version": API_VERSION, "full_version": "4.0.25.0", "status": "current"}
                ],
                "api_server_url": self.scenario.web_url,
                "web_server_url": self.scenario.web_url,
            }
        )

    def _me(self, args: dict[str, str], params: dict[str, Any], token: str | None) -> Reply:
        return Reply.json({"id": "1", "display_name": "Sandbox API user", "email": "api@example.invalid"})

    def _look(self, args: dict[str, str], params: dict[str, Any], token: str | None) -> Reply:
        look = self._looks.get(args["id"])
        if look is None:
            raise LookerFailure(404, NOT_FOUND_MESSAGE)
        return Reply.json(self._render_look(look))

    def _run_look(self, args: dict[str, str], params: dict[str, Any], token: str | None) -> Reply:
        look = self._looks.get(args["id"])
        if look is None:
            raise LookerFailure(404, NOT_FOUND_MESSAGE)
        return self._run(self._queries[str(look["query_id"])], args["format"])

    def _query(self, args: dict[str, str], params: dict[str, Any], token: str | None) -> Reply:
        return Reply.json(self._render_query(self._found(self._queries.get(args["id"]))))

    def _query_for_slug(self, args: dict[str, str], params: dict[str, Any], token: str | None) -> Reply:
        return Reply.json(self._render_query(self._found(self._slugs.get(args["slug"]))))

    def _run_query(self, args: dict[str, str], params: dict[str, Any], token: str | None) -> Reply:
        return self._run(self._found(self._queries.get(args["id"])), args["format"])

    def _create_query(self, args: dict[str, str], params: dict[str, Any], token: str | None) -> Reply:
        """Looker's create_query: an existing identical query comes back as is; otherwise a new one
        whose SQL is generated from the body, so it reflects its filters."""
        missing = [name for name in ("model", "view") if not params.get(name)]
        if missing:
            errors = [
                {"field": name, "code": "missing", "message": "This field is required."} for name in missing
            ]
            raise LookerFailure(422, "Validation Failed", errors)
        # Read-only fields (id, slug, url, can, …) are Looker's to set: ignored, as Looker does.
        body = {name: params.get(name) for name in _QUERY_IDENTITY if params.get(name) is not None}
        client_id = params.get("client_id")
        with self._lock:
            for query in self._queries.values():
                if _identity(query) == _identity(body):
                    if client_id and self._client_ids.setdefault(str(client_id), query["id"]) != query["id"]:
                        raise LookerFailure(409, f"client_id {client_id} is already taken")
                    return Reply.json(self._render_query(query))
            if client_id and str(client_id) in self._client_ids:
                raise LookerFailure(409, f"client_id {client_id} is already taken")
            try:
                sql = generate_sql(body)
            except UnknownField as exc:
                raise LookerFailure(
                    422, "Validation Failed", [{"field": "fields", "code": "invalid", "message": str(exc)}]
                ) from None
            query_id = str(next(self._next_query_id))
            query = {**body, "id": query_id, "slug": f"sbx{query_id}", "sql": sql, "rows": []}
            if client_id:
                query["client_id"] = str(client_id)
                self._client_ids[str(client_id)] = query_id
            self._queries[query_id] = query
            self._slugs[query["slug"]] = query
        return Reply.json(self._render_query(query))

    def _sql_query(self, args: dict[str, str], params: dict[str, Any], token: str | None) -> Reply:
        query = self._found(self._sql_queries.get(args["slug"]))
        return Reply.json(
            {
                "can": {"run": True, "download": True},
                "slug": str(query["slug"]),
                "last_runtime": None,
                "run_count": 0,
                "browser_limit": 500,
                "sql": str(query["sql"]),
                "last_run_at": None,
                "model_name": query.get("model_name"),
                "explore_url": None,
                "plaintext": False,
                "vis_config": None,
                "result_maker_id": None,
            }
        )

    def _dashboard(self, args: dict[str, str], params: dict[str, Any], token: str | None) -> Reply:
        dashboard = self._dashboards.get(args["id"])
        if dashboard is None:
            raise LookerFailure(404, NOT_FOUND_MESSAGE)
        return Reply.json(self._render_dashboard(dashboard))

    # ---- helpers -----------------------------------------------------------------------------------

    @staticmethod
    def _found(item: dict[str, Any] | None) -> dict[str, Any]:
        if item is None:
            raise LookerFailure(404, NOT_FOUND_MESSAGE)
        return item

    def _token_valid(self, token: str | None) -> bool:
        if not token:
            return False
        with self._lock:
            expiry = self._tokens.get(token)
            if expiry is None:
                return False
            if expiry <= time.monotonic():
                del self._tokens[token]
                return False
            return True

    def _run(self, query: dict[str, Any], result_format: str) -> Reply:
        if result_format not in _RESULT_FORMATS:
            raise LookerFailure(400, f"Unsupported result format: {result_format}")
        if result_format == "sql":
            return Reply.text(str(query.get("sql") or ""))
        rows: list[dict[str, Any]] = list(query.get("rows") or [])
        if result_format == "json":
            return Reply.json(rows)
        fields = self._fields(query)
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="," if result_format == "csv" else "\t", lineterminator="\n")
        writer.writerow(fields)
        for row in rows:
            writer.writerow(["" if row.get(f) is None else row.get(f) for f in fields])
        content_type = "text/csv; charset=utf-8" if result_format == "csv" else "text/plain; charset=utf-8"
        return Reply.text(buffer.getvalue(), content_type=content_type)

    @staticmethod
    def _fields(query: dict[str, Any]) -> list[str]:
        if query.get("fields"):
            return [str(f) for f in query["fields"]]
        rows = query.get("rows") or []
        return list(rows[0]) if rows else []

    def _render_query(self, query: dict[str, Any]) -> dict[str, Any]:
        model = str(query.get("model", "sandbox"))
        view = str(query.get("view", "sandbox"))
        slug = query.get("slug")
        explore = f"/explore/{model}/{view}"
        return {
            "id": str(query["id"]),
            "slug": slug,
            "model": model,
            "view": view,
            "fields": self._fields(query),
            "pivots": query.get("pivots"),
            "filters": query.get("filters"),
            "filter_expression": query.get("filter_expression"),
            "sorts": query.get("sorts", []),
            "limit": str(query.get("limit") or 500),
            "total": False,
            "dynamic_fields": query.get("dynamic_fields"),
            "fill_fields": query.get("fill_fields"),
            "query_timezone": query.get("query_timezone"),
            "client_id": query.get("client_id"),
            "url": f"{explore}?qid={slug}" if slug else explore,
            "share_url": f"{self.scenario.web_url}/x/{slug}" if slug else None,
            "expanded_share_url": f"{self.scenario.web_url}{explore}?qid={slug}" if slug else None,
            "has_table_calculations": False,
        }

    def _render_look(self, look: dict[str, Any]) -> dict[str, Any]:
        query = self._queries[str(look["query_id"])]
        return {
            "id": str(look["id"]),
            "title": look.get("title", ""),
            "description": look.get("description", ""),
            "query_id": str(look["query_id"]),
            "query": self._render_query(query),
            "model": {"id": str(query.get("model", "sandbox")), "label": str(query.get("model", "sandbox"))},
            "public": False,
            "deleted": False,
            "folder_id": str(look.get("folder_id", "1")),
            "url": f"/looks/{look['id']}",
            "short_url": f"/looks/{look['id']}",
        }

    def _render_dashboard(self, dashboard: dict[str, Any]) -> dict[str, Any]:
        dashboard_id = str(dashboard["id"])
        elements = []
        for spec in dashboard.get("elements", []):
            element: dict[str, Any] = {
                "id": str(spec.get("id", "")),
                "dashboard_id": dashboard_id,
                "title": spec.get("title"),
                "title_text": spec.get("title_text"),
                "body_text": spec.get("body_text"),
                "type": spec.get("type", "vis"),
                "query_id": None,
                "query": None,
                "look_id": None,
                "look": None,
                "result_maker": None,
                "result_maker_id": None,
            }
            query: dict[str, Any] | None = None
            if spec.get("query_id") is not None:
                query = self._queries[str(spec["query_id"])]
                element["query_id"] = str(query["id"])
                element["query"] = self._render_query(query)
            elif spec.get("look_id") is not None:
                look = self._looks[str(spec["look_id"])]
                element["look_id"] = str(look["id"])
                element["look"] = self._render_look(look)
                query = self._queries[str(look["query_id"])]
            # Which dashboard filter sets which field of this tile's query.
            filterables = [
                {
                    "model": query.get("model") if query else None,
                    "view": query.get("view") if query else None,
                    "name": spec.get("title"),
                    "listen": [
                        {"dashboard_filter_name": str(listen["filter"]), "field": str(listen["field"])}
                        for listen in spec.get("listen", [])
                    ],
                }
            ]
            if query is not None:
                # Looker also describes every data tile through its result maker.
                element["result_maker_id"] = element["id"]
                element["result_maker"] = {
                    "id": element["id"],
                    "query_id": str(query["id"]),
                    "query": self._render_query(query),
                    "sorts": query.get("sorts", []),
                    "dynamic_fields": query.get("dynamic_fields"),
                    "filterables": filterables,
                    "merge_result_id": None,
                    "total": False,
                    "vis_config": {},
                }
            elif spec.get("merge_result_id") is not None:
                # A merged-results tile: its result maker names the merge, and there is no query.
                element["merge_result_id"] = str(spec["merge_result_id"])
                element["result_maker_id"] = element["id"]
                element["result_maker"] = {
                    "id": element["id"],
                    "merge_result_id": str(spec["merge_result_id"]),
                    "query_id": None,
                    "sorts": [],
                    "dynamic_fields": None,
                    "filterables": filterables,
                    "total": False,
                    "vis_config": {},
                }
            elements.append(element)
        return {
            "id": dashboard_id,
            "title": dashboard.get("title", ""),
            "description": dashboard.get("description", ""),
            "dashboard_filters": [
                {
                    "can": {},
                    "id": f"{dashboard_id}{row:02d}",
                    "dashboard_id": dashboard_id,
                    "name": str(spec["name"]),
                    "title": spec.get("title", spec["name"]),
                    "type": spec.get("type", "field_filter"),
                    "default_value": spec.get("default_value"),
                    "model": spec.get("model"),
                    "explore": spec.get("explore"),
                    "dimension": spec.get("dimension"),
                    "field": None,
                    "row": row,
                    "listens_to_filters": [],
                    "allow_multiple_values": True,
                    "required": False,
                    "ui_config": None,
                }
                for row, spec in enumerate(dashboard.get("filters", []))
            ],
            "dashboard_elements": elements,
            "url": f"/dashboards/{dashboard_id}",
        }


def _identity(query: dict[str, Any]) -> str:
    """A query's SQL-making parts as canonical JSON (limit as Looker stores it, a string)."""
    parts = {name: query.get(name) for name in _QUERY_IDENTITY if query.get(name) not in (None, [], {})}
    if "limit" in parts:
        parts["limit"] = str(parts["limit"])
    return json.dumps(parts, sort_keys=True)
