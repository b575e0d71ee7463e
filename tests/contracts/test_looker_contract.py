"""Every Looker API 4.0 answer the sandbox gives, success and error, against Looker's own OpenAPI spec.

Plain HTTP, so the raw JSON is what is checked (looker_sdk would deserialize it leniently first);
the table below drives each emulated operation to each answer it can give.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from harness import PROJECT_ROOT
from harness.sandbox import Sandbox
from harness.testing.network import loopback_only
from tests.contracts.specs import looker_spec, validate_looker

SCENARIO = PROJECT_ROOT / "include" / "sandbox" / "scenarios" / "basic.json"


@dataclass(frozen=True)
class Call:
    verb: str
    spec_path: str
    url_path: str  # after /api/4.0
    status: int
    auth: bool = True
    login: str | None = None  # "good" or "bad" credentials for POST /login
    fault: tuple[str, str] | None = None  # (call-log method, fault kind)
    body: dict[str, Any] | None = None  # a JSON body (create_query)
    before: dict[str, Any] | None = None  # a JSON body POSTed first to the same path (409 cases)

    @property
    def id(self) -> str:
        return f"{self.verb} {self.url_path} {self.status}"


# A tile's query with another account in its filters: what CreditBot creates for a filtered dashboard.
NEW_QUERY: dict[str, Any] = {
    "model": "billing",
    "view": "counters_by_billable_item",
    "fields": ["billable_items.iso_country_code", "counters_by_billable_item.total_sum"],
    "filters": {"counters_by_billable_item.account_sid": "AC00000000000000000000000000000002"},
    "sorts": ["counters_by_billable_item.total_sum desc"],
    "limit": "500",
}

CALLS = [
    Call("POST", "/login", "/login", 200, auth=False, login="good"),
    Call("POST", "/login", "/login", 404, auth=False, login="bad"),
    Call("POST", "/login", "/login", 429, auth=False, fault=("POST /login", "ratelimited")),
    Call("DELETE", "/logout", "/logout", 204),
    Call("DELETE", "/logout", "/logout", 401, auth=False),
    Call("GET", "/versions", "/versions", 200, auth=False),
    Call("GET", "/versions", "/versions", 429, auth=False, fault=("GET /versions", "ratelimited")),
    Call("GET", "/user", "/user", 200),
    Call("GET", "/user", "/user", 401, auth=False),
    Call("GET", "/looks/{look_id}", "/looks/123", 200),
    Call("GET", "/looks/{look_id}", "/looks/999", 404),
    Call("GET", "/looks/{look_id}", "/looks/123", 401, auth=False),
    Call("GET", "/looks/{look_id}", "/looks/123", 429, fault=("GET /looks/{id}", "ratelimited")),
    Call("GET", "/looks/{look_id}", "/looks/123", 500, fault=("GET /looks/{id}", "server_error")),
    Call("GET", "/looks/{look_id}/run/{result_format}", "/looks/123/run/sql", 200),
    Call("GET", "/looks/{look_id}/run/{result_format}", "/looks/123/run/json", 200),
    Call("GET", "/looks/{look_id}/run/{result_format}", "/looks/123/run/csv", 200),
    Call("GET", "/looks/{look_id}/run/{result_format}", "/looks/123/run/txt", 200),
    Call("GET", "/looks/{look_id}/run/{result_format}", "/looks/123/run/png", 400),
    Call("GET", "/looks/{look_id}/run/{result_format}", "/looks/999/run/sql", 404),
    Call("GET", "/queries/slug/{slug}", "/queries/slug/qAcme01", 200),
    Call("GET", "/queries/slug/{slug}", "/queries/slug/nope", 404),
    Call("GET", "/queries/{query_id}", "/queries/501", 200),
    Call("GET", "/queries/{query_id}", "/queries/999", 404),
    Call("GET", "/queries/{query_id}/run/{result_format}", "/queries/501/run/sql", 200),
    Call("GET", "/queries/{query_id}/run/{result_format}", "/queries/501/run/json", 200),
    Call("GET", "/queries/{query_id}/run/{result_format}", "/queries/999/run/sql", 404),
    Call(
        "GET",
        "/queries/{query_id}/run/{result_format}",
        "/queries/501/run/sql",
        503,
        fault=("GET /queries/{id}/run/{format}", "server_error"),
    ),
    Call("POST", "/queries", "/queries", 200, body=NEW_QUERY),
    Call("POST", "/queries", "/queries", 200, body={**NEW_QUERY, "id": "1", "slug": "x", "can": {}}),
    Call("POST", "/queries", "/queries", 422, body={"model": "billing", "fields": NEW_QUERY["fields"]}),
    Call(
        "POST",
        "/queries",
        "/queries",
        409,
        body={**NEW_QUERY, "client_id": "creditbotcontract1", "limit": "10"},
        before={**NEW_QUERY, "client_id": "creditbotcontract1"},
    ),
    Call("POST", "/queries", "/queries", 429, body=NEW_QUERY, fault=("POST /queries", "ratelimited")),
    Call("GET", "/sql_queries/{slug}", "/sql_queries/sqlAcme1", 200),
    Call("GET", "/sql_queries/{slug}", "/sql_queries/nope", 404),
    Call("GET", "/dashboards/{dashboard_id}", "/dashboards/7", 200),
    Call("GET", "/dashboards/{dashboard_id}", "/dashboards/8", 200),  # filters, listeners, merged results
    Call("GET", "/dashboards/{dashboard_id}", "/dashboards/0", 404),
]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox.from_scenario(SCENARIO) as sb:
        yield sb


def _token(sb: Sandbox) -> str:
    creds = {"client_id": sb.looker_client_id, "client_secret": sb.looker_client_secret}
    return requests.post(f"{sb.looker_base_url}/api/4.0/login", data=creds, timeout=5).json()["access_token"]


def _call(sb: Sandbox, call: Call) -> requests.Response:
    headers = {"Authorization": f"token {_token(sb)}"} if call.auth else {}
    data: dict[str, Any] | None = None
    if call.login is not None:
        secret = sb.looker_client_secret if call.login == "good" else "not-the-secret"
        data = {"client_id": sb.looker_client_id, "client_secret": secret}
    if call.fault is not None:
        method, kind = call.fault
        sb.inject("looker", method, kind, status=call.status, retry_after=0)
    url = f"{sb.looker_base_url}/api/4.0{call.url_path}"
    with loopback_only():
        if call.before is not None:
            requests.post(url, headers=headers, json=call.before, timeout=5).raise_for_status()
        if call.body is not None:
            return requests.request(call.verb, url, headers=headers, json=call.body, timeout=5)
        return requests.request(call.verb, url, headers=headers, data=data, timeout=5)


@pytest.mark.parametrize("call", CALLS, ids=lambda c: c.id)
def test_sandbox_answers_as_lookers_spec_declares(sandbox: Sandbox, call: Call) -> None:
    response = _call(sandbox, call)
    assert response.status_code == call.status, response.text
    validate_looker(
        call.verb, call.spec_path, call.status, response.headers.get("content-type"), response.content
    )


def test_every_emulated_operation_is_in_the_extracted_spec_and_the_table(sandbox: Sandbox) -> None:
    emulated = {(verb.lower(), path) for verb, path in sandbox.looker.operations}
    extracted = {(verb, path) for path, ops in looker_spec()["paths"].items() for verb in ops}
    assert emulated <= extracted, f"re-run tests/contracts/extract.py for {sorted(emulated - extracted)}"
    tested = {(c.verb.lower(), c.spec_path) for c in CALLS}
    assert emulated <= tested, f"no contract case for {sorted(emulated - tested)}"
    for verb, path in emulated:
        statuses = {c.status for c in CALLS if (c.verb.lower(), c.spec_path) == (verb, path)}
        assert any(s < 300 for s in statuses), f"{verb} {path}: no success case ({sorted(statuses)})"
        assert any(s >= 400 for s in statuses), f"{verb} {path}: no error case ({sorted(statuses)})"


@pytest.mark.parametrize(
    ("doc_url", "reason"),
    [
        pytest.param(None, "nullable", id="null"),
        pytest.param(
            "https://cloud.google.com/looker/docs/r/err/4.0/404/get/looks/:look_id",
            "type",
            id="message-not-a-string",
        ),
    ],
)
def test_the_validator_rejects_what_the_spec_forbids(doc_url: str | None, reason: str) -> None:
    """The checks can fail: a body missing its documentation link, or with a wrong type, is refused."""
    import json

    body = {"message": "Not found"} if doc_url is None else {"message": 1, "documentation_url": doc_url}
    with pytest.raises(AssertionError, match="does not match the spec"):
        validate_looker("GET", "/looks/{look_id}", 404, "application/json", json.dumps(body).encode())
