"""Tests for harness.warehouse_server: the Trino/Presto client protocol, driven by the real clients.

Every client-side test uses the real ``trino`` or ``prestodb`` package over HTTPS (a certificate made for
the test) with basic auth; a few raw ``requests`` calls pin the documents and headers the clients rely on.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from credit_bot import warehouse
from credit_bot.warehouse import WarehouseConnectionError
from harness import sample_warehouse
from harness.warehouse_server import Tls, WarehouseFault, WarehouseServer, self_signed_tls

USER = "analyst"
PASSWORD = "fake-warehouse-password-for-tests"
WRONG = "fake-wrong-password-for-tests"
ENV = "AIRFLOW_CONN_CREDIT_WAREHOUSE_DEFAULT"
SQL_DIR = Path(__file__).resolve().parents[1] / "include" / "sandbox" / "sql"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_warehouse.build(tmp_path_factory.mktemp("warehouse") / "sample.duckdb")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return self_signed_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=["trino", "presto"])
def server(request: pytest.FixtureRequest, db: Path, tls: Tls) -> Iterator[WarehouseServer]:
    with WarehouseServer(db, dialect=request.param, users={USER: PASSWORD}, tls=tls, page_size=2) as srv:
        yield srv


def _connect(server: WarehouseServer, password: str | None = PASSWORD, **extra: Any) -> Any:
    """The real client, through credit_bot.warehouse.connect() (what the notebook calls)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV, json.dumps(server.connection(USER, password, **extra)))
        return warehouse.connect()


def _rows(conn: Any, sql: str, params: list[Any] | None = None) -> list[list[Any]]:
    cursor = conn.cursor()
    cursor.execute(sql, params)
    return [list(row) for row in cursor.fetchall()]


def _prefix(server: WarehouseServer) -> str:
    return server.dialect.prefix


def _accounts(db: Path) -> int:
    """How many accounts the sample warehouse has (the seed changes; the tests should not care)."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as direct:
        return int(direct.execute("SELECT COUNT(*) FROM public.rawpii_accounts").fetchone()[0])


# ── the protocol, seen raw ──────────────────────────────────────────────────────────────────────────


def _raw(server: WarehouseServer, tls: Tls) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    session.verify = str(tls.cert_file)
    session.auth = (USER, PASSWORD)
    session.headers[f"{_prefix(server)}User"] = USER
    return session


def test_queued_running_finished_with_paged_data(server: WarehouseServer, tls: Tls, db: Path) -> None:
    session = _raw(server, tls)
    first = session.post(
        f"{server.url}/v1/statement", data="SELECT sid FROM public.rawpii_accounts ORDER BY sid"
    )
    assert first.status_code == 200
    doc = first.json()
    assert doc["stats"]["state"] == "QUEUED"
    assert "data" not in doc
    assert doc["infoUri"].endswith(doc["id"])
    states, pages, columns = [], [], None
    next_uri = doc["nextUri"]
    while next_uri:
        doc = session.get(next_uri).json()
        states.append(doc["stats"]["state"])
        if "data" in doc:
            pages.append(doc["data"])
            columns = doc["columns"]
        next_uri = doc.get("nextUri")
    assert states[0] == "RUNNING"
    assert states[-1] == "FINISHED"
    accounts = _accounts(db)
    assert [len(page) for page in pages] == [2] * (accounts // 2) + [1] * (accounts % 2)  # two a page
    assert sorted(row[0] for page in pages for row in page) == [row[0] for page in pages for row in page]
    assert columns == [
        {
            "name": "sid",
            "type": "varchar",
            "typeSignature": {"rawType": "varchar", "arguments": [{"kind": "LONG", "value": 2147483647}]},
        }
    ]
    # A finished query is gone from nextUri; a made-up one is a 404, as on the servers.
    assert session.get(f"{server.url}/v1/statement/executing/nope/ynope/1").status_code == 404


def test_query_error_document(server: WarehouseServer, tls: Tls) -> None:
    session = _raw(server, tls)
    doc = session.post(f"{server.url}/v1/statement", data="SELECT * FROM public.no_such_table").json()
    doc = session.get(doc["nextUri"]).json()
    assert doc["stats"]["state"] == "FAILED"
    assert "nextUri" not in doc
    error = doc["error"]
    assert (error["errorName"], error["errorCode"], error["errorType"]) == (
        "TABLE_NOT_FOUND",
        46,
        "USER_ERROR",
    )
    assert "no_such_table" in error["message"]
    assert error["failureInfo"]["type"] in (
        "io.trino.spi.TrinoException",
        "com.facebook.presto.spi.PrestoException",
    )
    assert error["failureInfo"]["message"] == error["message"]


@pytest.mark.parametrize(
    ("authorization", "body"),
    [
        pytest.param(None, "Unauthorized", id="none"),
        pytest.param(
            "Basic " + base64.b64encode(f"{USER}:{WRONG}".encode()).decode(),
            "Access Denied: Invalid credentials",
            id="wrong",
        ),
        pytest.param(
            "Basic " + base64.b64encode(f"nobody:{PASSWORD}".encode()).decode(),
            "Access Denied: Invalid credentials",
            id="user",
        ),
        pytest.param("Bearer abc", "Unauthorized", id="bearer"),
    ],
)
def test_auth_failures_are_401_with_a_basic_challenge(
    server: WarehouseServer, tls: Tls, authorization: str | None, body: str
) -> None:
    headers = {f"{_prefix(server)}User": USER}
    if authorization:
        headers["Authorization"] = authorization
    reply = requests.post(
        f"{server.url}/v1/statement", data="SELECT 1", headers=headers, verify=str(tls.cert_file), timeout=10
    )
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == f'Basic realm="{server.dialect.realm}"'
    assert reply.text == body
    assert server.queries() == []  # refused before any query exists
    # Every request is authenticated, not only the POST.
    good = _raw(server, tls).post(f"{server.url}/v1/statement", data="SELECT 1").json()
    follow = requests.get(good["nextUri"], headers=headers, verify=str(tls.cert_file), timeout=10)
    assert follow.status_code == 401


def test_a_user_header_naming_someone_else_is_refused(server: WarehouseServer, tls: Tls) -> None:
    session = _raw(server, tls)
    session.headers[f"{_prefix(server)}User"] = "someone-else"
    doc = session.post(f"{server.url}/v1/statement", data="SELECT 1").json()
    assert doc["error"]["errorName"] == "PERMISSION_DENIED"
    assert "cannot impersonate user someone-else" in doc["error"]["message"]


def test_the_password_is_never_recorded(server: WarehouseServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    conn = _connect(server)
    assert _rows(conn, "SELECT 42") == [[42]]
    with pytest.raises(WarehouseConnectionError):
        _connect(server, WRONG)
    assert server.failed_logins == 1
    seen = json.dumps([r.__dict__ for r in server.received])
    for secret in (PASSWORD, WRONG, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()):
        assert secret not in seen
        assert secret not in caplog.text
    assert all("authorization" not in {k.lower() for k in r.headers} for r in server.received)


# ── the real clients ────────────────────────────────────────────────────────────────────────────────


def test_looker_sql_through_the_real_client_matches_duckdb(server: WarehouseServer, db: Path) -> None:
    import duckdb

    sql = (SQL_DIR / "verify_acme.sql").read_text(encoding="utf-8")
    conn = _connect(server)
    cursor = conn.cursor()
    cursor.execute(sql)
    rows = cursor.fetchall()
    with duckdb.connect(str(db), read_only=True) as direct:
        result = direct.execute(sql)
        names = [c[0] for c in result.description]
        expected = result.fetchall()
    # Looker's names, quoted dots and all; its sums are decimals.
    assert [c[0] for c in cursor.description] == names
    assert "counters_by_billable_item.total_sum" in names
    total = names.index("counters_by_billable_item.total_sum")
    assert cursor.description[total][1] == "decimal(38,4)"
    assert rows
    assert len(rows) == len(expected)
    # trino maps decimals to Decimal; prestodb hands back the JSON string: both exact.
    assert [Decimal(str(row[total])) for row in rows] == [row[total] for row in expected]
    assert [row[:total] for row in rows] == [list(row[:total]) for row in expected]
    if server.dialect.name == "presto":
        assert all(isinstance(row[total], str) for row in rows)


def test_parameters_go_through_each_clients_prepared_statements(server: WarehouseServer) -> None:
    conn = _connect(server)
    rows = _rows(
        conn,
        "SELECT account_sid, COUNT(*) FROM accsecai.dsg_fds_raw_events WHERE account_sid = ? "
        "AND data_load_date >= ? AND data_load_date < ? AND product_id = ? GROUP BY 1",
        ["AC" + "b01".rjust(32, "0"), dt.datetime(2026, 10, 1), dt.date(2026, 11, 1), "Verify"],
    )
    assert rows == [["AC" + "b01".rjust(32, "0"), 131 + 59 + 63 + 29 + 21]]
    bodies = [r.body for r in server.received if r.method == "POST"]
    prefix = _prefix(server)
    if server.dialect.name == "trino":
        # trino probes for EXECUTE IMMEDIATE and uses it; no server state, no prepared-statement header.
        assert any(b.startswith("EXECUTE IMMEDIATE 'SELECT account_sid") for b in bodies)
        assert not any(b.startswith("PREPARE") for b in bodies)
    else:
        assert any(b.startswith("PREPARE st_") for b in bodies)
        [execute] = [r for r in server.received if r.method == "POST" and r.body.startswith("EXECUTE st_")]
        assert "USING 'AC" in execute.body
        assert "TIMESTAMP '2026-10-01 00:00:00.000000'" in execute.body
        # The statement travels back in the client's header, as the server asked in Added-Prepare.
        name = execute.body.split()[1]
        assert execute.headers[f"{prefix}Prepared-Statement"].startswith(f"{name}=SELECT+account_sid")
        assert any(b == f"DEALLOCATE PREPARE {name}" for b in bodies)


def test_trino_legacy_prepared_statements(db: Path, tls: Tls) -> None:
    import trino

    with WarehouseServer(db, dialect="trino", users={USER: PASSWORD}, tls=tls) as server:
        conn = trino.dbapi.connect(
            host="127.0.0.1",
            port=server.port,
            user=USER,
            http_scheme="https",
            auth=trino.auth.BasicAuthentication(USER, PASSWORD),
            http_session=warehouse._http_session(str(tls.cert_file)),
            legacy_prepared_statements=True,
        )
        assert _rows(conn, "SELECT ? + 1, ?", [41, Decimal("1.23456")]) == [[42, Decimal("1.23456")]]
        [execute] = [r for r in server.received if r.body.startswith("EXECUTE st_")]
        assert "X-Trino-Prepared-Statement" in execute.headers
        assert "DECIMAL '1.23456'" in execute.body  # kept exact by the server's one dialect shim


def test_presto_has_no_execute_immediate(db: Path, tls: Tls) -> None:
    with WarehouseServer(db, dialect="presto", users={USER: PASSWORD}, tls=tls) as server:
        conn = _connect(server)
        with pytest.raises(Exception, match="SYNTAX_ERROR"):
            _rows(conn, "EXECUTE IMMEDIATE 'SELECT 1'")


def test_session_properties_catalog_and_schema_headers(server: WarehouseServer, db: Path) -> None:
    conn = _connect(server, session_properties={"query_max_run_time": "10m"}, source="credit-bot-tests")
    # Unqualified: the connection's schema, public.
    assert _rows(conn, "SELECT COUNT(*) FROM rawpii_accounts") == [[_accounts(db)]]
    prefix = _prefix(server)
    post = [r for r in server.received if r.method == "POST"][-1]
    assert post.headers[f"{prefix}User"] == USER
    assert post.headers[f"{prefix}Catalog"] == "hive"
    assert post.headers[f"{prefix}Schema"] == "public"
    assert post.headers[f"{prefix}Source"] == "credit-bot-tests"
    assert post.headers[f"{prefix}Session"] == "query_max_run_time=10m"
    other = "X-Presto-" if prefix == "X-Trino-" else "X-Trino-"
    assert not any(k.startswith(other) for r in server.received for k in r.headers)

    # SET SESSION answers Set-Session; the client keeps it and sends it with the next query.
    _rows(conn, "SET SESSION join_distribution_type = 'BROADCAST'")
    _rows(conn, "SELECT 1")
    last = [r for r in server.received if r.method == "POST"][-1]
    assert "join_distribution_type=BROADCAST" in last.headers[f"{prefix}Session"]

    with pytest.raises(Exception, match="INVALID_SESSION_PROPERTY"):
        _rows(conn, "SET SESSION no_such_property = 1")


def test_unknown_catalog_and_bad_sql_are_query_errors(server: WarehouseServer) -> None:
    with pytest.raises(WarehouseConnectionError, match="failed a test query"):
        _connect(server, catalog="nope")
    conn = _connect(server)
    with pytest.raises(Exception, match="SYNTAX_ERROR") as info:
        _rows(conn, "SELEC 1")
    assert info.value.error_code == 1  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="COLUMN_NOT_FOUND"):
        _rows(conn, "SELECT nope FROM public.rawpii_accounts")


def test_wrong_password_is_a_clear_connection_error(
    server: WarehouseServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(WarehouseConnectionError) as info:
        _connect(server, WRONG)
    message = str(info.value)
    assert f"refused the login of user '{USER}' (HTTP 401)" in message
    assert "Check the connection's login and password" in message
    assert WRONG not in message
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert WRONG not in caplog.text


def test_untrusted_certificate_names_verify(server: WarehouseServer) -> None:
    with pytest.raises(WarehouseConnectionError, match=r"TLS verification failed\. Set extra verify"):
        _connect(server, verify=True)


def test_plain_http_without_auth(db: Path) -> None:
    import prestodb
    import trino

    for dialect, client in (("trino", trino), ("presto", prestodb)):
        with WarehouseServer(db, dialect=dialect) as server:
            conn = _connect(server, None)
            assert _rows(conn, "SELECT 1") == [[1]]
            reply = requests.post(f"{server.url}/v1/statement", data="SELECT 1", timeout=10)
            assert (reply.status_code, reply.text) == (400, "User must be set")
            assert client.__name__ in ("trino", "prestodb")


def test_basic_auth_without_tls_is_refused_by_the_server_and_the_clients(db: Path) -> None:
    with pytest.raises(ValueError, match="needs TLS"):
        WarehouseServer(db, users={USER: PASSWORD})
    conn = {
        "conn_type": "presto",
        "host": "127.0.0.1",
        "login": USER,
        "password": PASSWORD,
        "extra": {"protocol": "http"},
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV, json.dumps(conn))
        with pytest.raises(WarehouseConnectionError, match="over plain http") as info:
            warehouse.connect()
    assert PASSWORD not in str(info.value)


# ── Presto SQL: the team's queries, through prestodb, on a warehouse of this file's own ──────────────

ACCOUNT = "ACfake00000000000000000000000001"  # fake SIDs, the shape of the team's
CHILD = "ACfake00000000000000000000000002"
OTHER = "ACfake00000000000000000000000003"

# The team's tables, only the columns their SQL reads (names as in the team's notebook).
TEAM_TABLES: dict[str, list[tuple[str, str]]] = {
    "public.counters_by_billable_item_complete": [
        ("account_sid", "VARCHAR"),
        ("billable_item_sid", "VARCHAR"),
        ("date", "DATE"),
        ("total", "DECIMAL(18,4)"),
        ("quantity", "DECIMAL(18,4)"),
        ("units", "VARCHAR"),
        ("subtype", "VARCHAR"),
        ("data_load_date", "DATE"),
    ],
    "public.rawpii_dim_account": [("sid", "VARCHAR"), ("friendly_name", "VARCHAR")],
    "public.billable_items": [
        ("sid", "VARCHAR"),
        ("friendly_name", "VARCHAR"),
        ("iso_country_code", "VARCHAR"),
    ],
    "darwin_transform.billable_item_metadata_alex": [("sid", "VARCHAR"), ("product", "VARCHAR")],
    "public.mcc_country": [("mcc", "VARCHAR"), ("two_letter_country_code", "VARCHAR")],
    "public.rawpii_accounts": [("sid", "VARCHAR"), ("parent_account_sid", "VARCHAR")],
    "accsecai.dsg_fds_raw_events": [
        ("data_load_date", "DATE"),
        ("account_sid", "VARCHAR"),
        ("mcc", "VARCHAR"),
        ("product_id", "VARCHAR"),
        ("channel", "VARCHAR"),
        ("fraud_guard_enabled", "BOOLEAN"),
        ("reason", "VARCHAR"),
        ("protection_mode", "VARCHAR"),
        ("block", "BOOLEAN"),
    ],
    "public.accsec_verify_comms": [
        ("id", "VARCHAR"),
        ("to", "VARCHAR"),
        ("mcc", "VARCHAR"),
        ("mnc", "VARCHAR"),
        ("created_at_utc", "TIMESTAMP"),
        ("account_sid", "VARCHAR"),
        ("scope_id", "VARCHAR"),
        ("data_load_date", "DATE"),
        ("error_code", "INTEGER"),
        ("channel", "VARCHAR"),
    ],
    "public.rawpii_sms_kafka": [
        ("sid", "VARCHAR"),
        ("provider_sid", "VARCHAR"),
        ("price", "DECIMAL(18,4)"),
        ("error_code", "INTEGER"),
        ("mcc", "VARCHAR"),
        ("data_load_date", "DATE"),
    ],
    "public.providers": [
        ("sid", "VARCHAR"),
        ("friendly_name", "VARCHAR"),
        ("provider_organization_sid", "VARCHAR"),
    ],
    "public.provider_organizations": [("sid", "VARCHAR"), ("friendly_name", "VARCHAR")],
    "public.messaging_reporting_rates": [
        ("provider_sid", "VARCHAR"),
        ("mcc", "VARCHAR"),
        ("mnc", "VARCHAR"),
        ("effective_rate", "DECIMAL(18,6)"),
        ("billing_type", "VARCHAR"),
        ("currency", "VARCHAR"),
        ("created_utc", "TIMESTAMP"),
    ],
}

D = dt.date
TS = dt.datetime(2025, 7, 2, 12, 0)


def _event(day: int, sid: str, mcc: str, reason: str, mode: str, block: bool, **changes: Any) -> tuple:
    row = {
        "data_load_date": D(2025, 7, day),
        "account_sid": sid,
        "mcc": mcc,
        "product_id": "Verify",
        "channel": "sms",
        "fraud_guard_enabled": True,
        "reason": reason,
        "protection_mode": mode,
        "block": block,
    }
    row.update(changes)
    return tuple(row.values())


TEAM_ROWS: dict[str, list[tuple]] = {
    "public.counters_by_billable_item_complete": [
        # The period (July 2025): two Authy Verify items count, a "Phone Number" one does not.
        (
            ACCOUNT,
            "BIfake01",
            D(2025, 7, 5),
            Decimal("100.0000"),
            Decimal("1000"),
            "USD",
            "sale",
            D(2025, 7, 5),
        ),
        (ACCOUNT, "BIfake01", D(2025, 7, 6), Decimal("10.0000"), Decimal("100"), "USD", "tax", D(2025, 7, 6)),
        (
            ACCOUNT,
            "BIfake02",
            D(2025, 7, 7),
            Decimal("50.5000"),
            Decimal("500"),
            "USD",
            "sale",
            D(2025, 7, 7),
        ),
        (ACCOUNT, "BIfake03", D(2025, 7, 8), Decimal("999.0000"), Decimal("1"), "USD", "sale", D(2025, 7, 8)),
        # The 90 days before it (from 2025-04-02): sales of 300 + 601, a tax and a day too early left out.
        (
            ACCOUNT,
            "BIfake01",
            D(2025, 4, 1),
            Decimal("1000.0000"),
            Decimal("1"),
            "USD",
            "sale",
            D(2025, 4, 1),
        ),
        (ACCOUNT, "BIfake01", D(2025, 4, 2), Decimal("300.0000"), Decimal("1"), "USD", "sale", D(2025, 4, 2)),
        (
            ACCOUNT,
            "BIfake01",
            D(2025, 6, 15),
            Decimal("601.0000"),
            Decimal("1"),
            "USD",
            "sale",
            D(2025, 6, 15),
        ),
        (ACCOUNT, "BIfake01", D(2025, 6, 20), Decimal("50.0000"), Decimal("1"), "USD", "tax", D(2025, 6, 20)),
    ],
    "public.rawpii_dim_account": [(ACCOUNT, "fake account one")],
    "public.billable_items": [
        ("BIfake01", "Authy Verify Outbound SMS", "GB"),
        ("BIfake02", "Outbound SMS - Verify", "FR"),
        ("BIfake03", "Phone Number Outbound SMS", "DE"),
    ],
    "darwin_transform.billable_item_metadata_alex": [
        ("BIfake01", "Authy Verify"),
        ("BIfake02", "Authy Verify"),
        ("BIfake03", "Authy Verify"),
    ],
    "public.mcc_country": [("234", "GB"), ("235", "GB"), ("208", "FR"), ("262", "DE"), ("310", "US")],
    "public.rawpii_accounts": [(ACCOUNT, None), (CHILD, ACCOUNT), (OTHER, None)],
    "accsecai.dsg_fds_raw_events": [
        *[_event(2, ACCOUNT, "234", "risk_check_passed", "max", False)] * 3,
        _event(3, ACCOUNT, "234", "risk_check_blocked", "max", True),
        *[_event(3, CHILD, "208", "risk_check_blocked", "max", True)] * 2,  # the child account counts too
        *[_event(4, ACCOUNT, "235", "fraud_guard_disabled", "basic", False, fraud_guard_enabled=False)] * 2,
        _event(6, ACCOUNT, "234", "pass_country_level_config_request", "standard", False),
        _event(7, ACCOUNT, "208", "risk_check_blocked", "standard", True),
        *[_event(7, ACCOUNT, "208", "risk_check_passed", "standard", False)] * 2,
        # Left out: a duplicate, another channel, after the period, another account, a US MCC.
        _event(4, ACCOUNT, "234", "duplicate_request_skipped", "max", False),
        _event(4, ACCOUNT, "234", "risk_check_passed", "max", False, channel="whatsapp"),
        _event(7, ACCOUNT, "234", "risk_check_passed", "max", False, data_load_date=D(2025, 8, 1)),
        _event(5, OTHER, "234", "risk_check_passed", "max", False),
        _event(5, ACCOUNT, "310", "risk_check_passed", "max", False),
    ],
    "public.accsec_verify_comms": [
        ("SMfake01", "+447700900001", "234", "10", TS, ACCOUNT, "VAfake", D(2025, 7, 2), None, "SMS"),
        ("SMfake02", "+447700900002", "234", "10", TS, CHILD, "VAfake", D(2025, 7, 3), None, "sms"),
        ("SMfake03", "+33612345678", "208", "01", TS, ACCOUNT, "VAfake", D(2025, 7, 4), None, "sms"),
        ("SMfake04", "+447700900003", "234", "10", TS, ACCOUNT, "VAfake", D(2025, 7, 5), None, "sms"),
        ("SMfake05", "+447700900001", "234", "10", TS, ACCOUNT, "VAfake", D(2025, 7, 6), None, "whatsapp"),
    ],
    "public.rawpii_sms_kafka": [
        ("SMfake01", "PRfake01", Decimal("-0.0500"), 0, "234", D(2025, 7, 2)),
        ("SMfake02", "PRfake01", Decimal("-0.0700"), 0, "234", D(2025, 7, 3)),
        ("SMfake03", "PRfake02", Decimal("-0.1000"), 0, "208", D(2025, 7, 4)),
        ("SMfake04", "PRfake01", None, 0, "234", D(2025, 7, 5)),  # no price: inferred from the others
    ],
    "public.providers": [
        ("PRfake01", "Fake Provider UK", "POfake01"),
        ("PRfake02", "Fake Provider FR", "POfake02"),
    ],
    "public.provider_organizations": [("POfake01", "SOATSO AB"), ("POfake02", "Fake Org FR")],
    "public.messaging_reporting_rates": [
        ("PRfake01", "234", "10", Decimal("0.02"), "per_message", "USD", dt.datetime(2025, 1, 1)),
        ("PRfake01", "234", "10", Decimal("0.03"), "per_message", "USD", dt.datetime(2025, 6, 1)),  # latest
        ("PRfake02", "208", "01", Decimal("0.04"), "per_message", "USD", dt.datetime(2025, 5, 1)),
    ],
}


@pytest.fixture(scope="module")
def team_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny warehouse with the team's schemas, tables and columns (no dependency on the sample seed)."""
    import duckdb

    path = tmp_path_factory.mktemp("team-warehouse") / "team.duckdb"
    with duckdb.connect(str(path)) as conn:
        for table, columns in TEAM_TABLES.items():
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
            definitions = ", ".join(f'"{name}" {sql_type}' for name, sql_type in columns)  # "to", "date"
            conn.execute(f"CREATE TABLE {table} ({definitions})")
            marks = ", ".join("?" for _ in columns)
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", [list(r) for r in TEAM_ROWS[table]])
        conn.execute("CHECKPOINT")
    return path


@pytest.fixture
def presto(team_db: Path, tls: Tls) -> Iterator[WarehouseServer]:
    with WarehouseServer(team_db, dialect="presto", users={USER: PASSWORD}, tls=tls, page_size=3) as srv:
        yield srv


def _team_connection(server: WarehouseServer, tls: Tls, **options: Any) -> Any:
    """prestodb, connected as the team's notebook connects (catalog hive, schema public, basic auth)."""
    import prestodb

    conn = prestodb.dbapi.connect(
        host="127.0.0.1",
        port=server.port,
        user=USER,
        catalog="hive",
        schema="public",
        http_scheme="https",
        auth=prestodb.auth.BasicAuthentication(USER, PASSWORD),
        **options,
    )
    conn._http_session = warehouse._http_session(str(tls.cert_file))  # trust the test's certificate
    return conn


def _presto_data(conn: Any, sql: str) -> tuple[list[str], list[list[Any]]]:
    """The team's get_presto_data, without pandas: (column names, rows)."""
    cursor = conn.cursor()
    cursor.execute(sql)
    rows = [list(row) for row in cursor.fetchall()]
    return [d[0] for d in cursor.description], rows


START, END = "2025-07-01", "2025-07-31"  # Looker's TIMESTAMP '2025-08-01', less a day (the team's cell 8)
MCC_STRING = "'234', '235', '208'"

# Cell 4 of the team's earlier notebook (Looker's SQL), after their cell-5 rewrite added the country.
LOOKER_SQL = f"""
SELECT
    account_dimension.sid  AS "account_dimension.account_sid",
    account_dimension.friendly_name  AS "account_dimension.friendly_name",
    billable_items.sid  AS "billable_items.sid",
    billable_item_metadata_alex.product  AS "billable_item_metadata_alex.product",
    COALESCE(SUM(counters_by_billable_item.total ), 0) AS "counters_by_billable_item.total_sum",
    COALESCE(SUM(counters_by_billable_item.quantity ), 0) AS "counters_by_billable_item.quantity_sum",
    billable_items.iso_country_code AS iso_country_code
FROM public.counters_by_billable_item_complete  AS counters_by_billable_item
LEFT JOIN rawpii_dim_account  AS account_dimension ON counters_by_billable_item.account_sid  = account_dimension.sid
LEFT JOIN public.billable_items  AS billable_items ON counters_by_billable_item.billable_item_sid  = billable_items.sid
LEFT JOIN darwin_transform.billable_item_metadata_alex  AS billable_item_metadata_alex ON counters_by_billable_item.billable_item_sid = billable_item_metadata_alex.sid
WHERE (counters_by_billable_item.account_sid ) = '{ACCOUNT}' AND (((( counters_by_billable_item.date  ) >= (TIMESTAMP '2025-07-01') AND ( counters_by_billable_item.date  ) < (TIMESTAMP '2025-08-01'))) AND (counters_by_billable_item.units ) = 'USD') AND ((counters_by_billable_item.subtype ) IN ('sale', 'tax') AND ((UPPER(( billable_items.friendly_name  )) LIKE UPPER('%Outbound SMS%') OR UPPER(( billable_items.friendly_name  )) LIKE UPPER('%Outbound Shortcode SMS%')) AND (UPPER(( billable_items.friendly_name  )) NOT LIKE UPPER('%Say%') AND UPPER(( billable_items.friendly_name  )) NOT LIKE UPPER('%Incoming%') AND UPPER(( billable_items.friendly_name  )) NOT LIKE UPPER('%Phone Number%') OR ( billable_items.friendly_name  ) IS NULL)) AND ((billable_item_metadata_alex.product ) LIKE '%Authy%' AND (counters_by_billable_item.data_load_date >=  COALESCE( TIMESTAMP '2025-07-01', date '2010-01-01') )))
GROUP BY
    1,
    2,
    3,
    4,
    billable_items.iso_country_code
ORDER BY
    5 DESC
LIMIT 500
"""  # noqa: E501 - Looker's line lengths

# Cell 6.
MCC_SQL = """


select

mcc

from "public".mcc_country

where two_letter_country_code in ('GB', 'FR')


"""

# Cell 10.
FG_SETTINGS_SQL = f"""


SELECT

fraud_guard_enabled
,mcc
,reason
,protection_mode
,count(*) as count


FROM
hive.accsecai.dsg_fds_raw_events a
left JOIN hive.public.rawpii_accounts par on par.sid = a.account_sid

WHERE
data_load_date >= date '{START}'
and data_load_date <= date '{END}'
and (account_sid = '{ACCOUNT}'
or par.parent_account_sid = '{ACCOUNT}')
and mcc in ({MCC_STRING})
and mcc not in ('310', '311', '312', '313', '302')
and product_id = 'Verify'
and reason <> 'duplicate_request_skipped'
and channel = 'sms'
group by 1,2,3,4
order by 5 desc


"""

# Cell 13.
PARENT_SQL = f"""

select

parent_account_sid

from hive.public.rawpii_accounts

where sid = '{ACCOUNT}'

"""

# Cell 15.
MRR_SQL = f"""

select
    '{ACCOUNT}' as account_sid,
    sum(total)/3 as mrr
from public.counters_by_billable_item_complete
    where account_sid = '{ACCOUNT}'
    and "date" >= DATE_ADD('day', -90, DATE '{START}')
    and "date" < DATE '{START}'
    and subtype in ('sale')
group by 1
order by 1,2

"""

# Cell 16.
TRUE_COST_SQL = f"""

-- Provider Quantities and Cost for Verify (Optimized)
WITH

-- 1. Filter comms table early
filtered_comms AS (
    SELECT
        id,
        "to" as phone_number,
        mcc,
        mnc,
        created_at_utc,
        account_sid,
        scope_id,
        data_load_date,
        error_code,
        -- for ease, keep these for joining
        lower(channel) as channel
    FROM
        hive.public.accsec_verify_comms a
        left JOIN hive.public.rawpii_accounts par on par.sid = a.account_sid
    WHERE
        data_load_date >= DATE '{START}'
        AND data_load_date <= DATE '{END}'
        and (account_sid = '{ACCOUNT}'
        or par.parent_account_sid = '{ACCOUNT}')
        AND mcc in ({MCC_STRING})
        AND lower(channel) = 'sms'
),

-- 2. Filter rawpii_sms_kafka table early (by SID and date)
filtered_sms AS (
    SELECT
        sid,
        provider_sid,
        price,
        error_code,
        cast(price as double) * -1.0 as price_transformed,
        data_load_date
    FROM
        hive.public.rawpii_sms_kafka
    WHERE
        data_load_date >= DATE '{START}'
        and data_load_date <= DATE '{END}'
        and mcc in ({MCC_STRING})

),

-- 3. Join the (much smaller) tables before further joins
the_data AS (
    SELECT
        sms.provider_sid,
        p.friendly_name AS provider_name,
        p.provider_organization_sid,
        po.friendly_name AS provider_organization_name,
        sms.error_code,
        comms.phone_number,
        substr(replace(comms.phone_number, '+'), 1, length(replace(comms.phone_number, '+'))-3) AS onek_prefix,
        substr(replace(comms.phone_number, '+'), 1, length(replace(comms.phone_number, '+'))-4) AS tenk_prefix,
        comms.mcc,
        comms.mnc,
        comms.created_at_utc,
        comms.account_sid,
        comms.scope_id,
        comms.data_load_date,
        CASE WHEN sms.price IS NULL THEN 1 ELSE 0 END AS price_is_null,
        sms.price_transformed AS price
    FROM
        filtered_comms comms
        LEFT JOIN filtered_sms sms ON comms.id = sms.sid
        LEFT JOIN hive.public.providers p ON p.sid = sms.provider_sid
        LEFT JOIN hive.public.provider_organizations po ON p.provider_organization_sid = po.sid
),

provider_mcc_data AS (
    SELECT
        provider_organization_name,
        provider_sid,
        mcc,
        mnc,
        COUNT(phone_number) AS record_count,
        COUNT(DISTINCT phone_number) AS distinct_pn,
        SUM(CASE WHEN error_code != 30450 THEN price_is_null ELSE 0 END) AS null_price_count,
        SUM(price) AS customer_cost
    FROM
        the_data
    GROUP BY
        provider_organization_name,
        provider_sid,
        mcc,
        mnc
),

provider_cogs AS (
    SELECT
        po.friendly_name,
        psms.provider_sid,
        psms.mcc,
        psms.mnc,
        effective_rate,
        billing_type,
        currency,
        psms.created_utc,
        ROW_NUMBER() OVER (PARTITION BY psms.provider_sid, mcc, mnc ORDER BY psms.created_utc DESC) AS rank
    FROM
        public.messaging_reporting_rates psms
        LEFT JOIN hive.public.providers p ON p.sid = psms.provider_sid
        LEFT JOIN hive.public.provider_organizations po ON p.provider_organization_sid = po.sid
    WHERE
        effective_rate IS NOT NULL
),

latest_provider_cogs AS (
    SELECT *
    FROM provider_cogs
    WHERE rank = 1
),

penultimate AS (
    SELECT
        sms.provider_organization_name,
        sms.provider_sid,
        sms.mcc,
        sms.mnc,
        p.effective_rate AS provider_rate,
        record_count,
        distinct_pn,
        null_price_count,
        customer_cost AS customer_cost_w_missing_px,
        CAST(customer_cost AS double) / NULLIF(CAST(record_count AS double) - CAST(null_price_count AS double), 0) AS avg_cost_provider_mcc,
        (CAST(customer_cost AS double) / NULLIF(CAST(record_count AS double) - CAST(null_price_count AS double), 0)) * CAST(null_price_count AS double) AS inferred_missing_px_cost,
        ((CAST(customer_cost AS double) / NULLIF(CAST(record_count AS double) - CAST(null_price_count AS double), 0)) * CAST(null_price_count AS double)) + CAST(customer_cost AS double) AS total_customer_cost,
        CAST(p.effective_rate AS double) * CAST(record_count AS double) AS provider_cogs
    FROM
        provider_mcc_data sms
        LEFT JOIN latest_provider_cogs p
            ON sms.provider_sid = p.provider_sid
            AND sms.mcc = p.mcc
            AND sms.mnc = p.mnc
)

SELECT
    provider_organization_name,
    SUM(record_count) AS record_count,
    SUM(distinct_pn) AS distinct_pn,
    SUM(customer_cost_w_missing_px) AS customer_cost_w_missing_px,
    SUM(inferred_missing_px_cost) AS inferred_missing_px_cost,
    SUM(total_customer_cost) AS total_revenue,
    SUM(provider_cogs) AS total_twilio_cogs,
    SUM(total_customer_cost) - SUM(provider_cogs) AS total_twilio_profit
FROM
    penultimate
WHERE
    customer_cost_w_missing_px > 0
GROUP BY
    1



"""  # noqa: E501 - the team's line lengths

# Cell 19.
BLOCKING_SQL = f"""


SELECT

protection_mode,
count(*) as count,
ROUND(CAST(SUM(CASE WHEN block = true THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*), 3) AS block_rate

FROM
hive.accsecai.dsg_fds_raw_events a

left JOIN hive.public.rawpii_accounts par on par.sid = a.account_sid

WHERE
data_load_date >= date '{START}'
and data_load_date <= date '{END}'
and (account_sid = '{ACCOUNT}'
or par.parent_account_sid = '{ACCOUNT}')
and mcc in ({MCC_STRING})
and product_id = 'Verify'
and channel = 'sms'
and fraud_guard_enabled = true
and reason <> 'risk_check_disabled'
and reason <> 'duplicate_request_skipped'
and reason <> 'pass_country_level_config_request'
group by 1
order by 2 desc


"""


def test_team_looker_query(presto: WarehouseServer, tls: Tls) -> None:
    names, rows = _presto_data(_team_connection(presto, tls), LOOKER_SQL)
    assert names[4:] == [
        "counters_by_billable_item.total_sum",
        "counters_by_billable_item.quantity_sum",
        "iso_country_code",
    ]
    # prestodb hands decimals over as the coordinator's strings, with their scale.
    assert rows == [
        [ACCOUNT, "fake account one", "BIfake01", "Authy Verify", "110.0000", "1100.0000", "GB"],
        [ACCOUNT, "fake account one", "BIfake02", "Authy Verify", "50.5000", "500.0000", "FR"],
    ]


def test_team_mcc_and_parent_queries(presto: WarehouseServer, tls: Tls) -> None:
    conn = _team_connection(presto, tls)
    names, rows = _presto_data(conn, MCC_SQL)
    assert names == ["mcc"]
    assert sorted(row[0] for row in rows) == ["208", "234", "235"]
    assert _presto_data(conn, PARENT_SQL) == (["parent_account_sid"], [[None]])


def test_team_fraud_guard_settings_and_blocking(presto: WarehouseServer, tls: Tls) -> None:
    conn = _team_connection(presto, tls)
    names, rows = _presto_data(conn, FG_SETTINGS_SQL)
    assert names == ["fraud_guard_enabled", "mcc", "reason", "protection_mode", "count"]
    assert [row[4] for row in rows] == sorted((row[4] for row in rows), reverse=True)  # order by 5 desc
    assert sorted(rows, key=lambda row: (-row[4], row[1], row[2], row[3])) == [
        [True, "234", "risk_check_passed", "max", 3],
        [True, "208", "risk_check_blocked", "max", 2],  # the child account's
        [True, "208", "risk_check_passed", "standard", 2],
        [False, "235", "fraud_guard_disabled", "basic", 2],
        [True, "208", "risk_check_blocked", "standard", 1],
        [True, "234", "pass_country_level_config_request", "standard", 1],
        [True, "234", "risk_check_blocked", "max", 1],
    ]
    names, rows = _presto_data(conn, BLOCKING_SQL)
    assert names == ["protection_mode", "count", "block_rate"]
    assert rows == [["max", 6, 0.5], ["standard", 3, 0.333]]


def test_team_mrr_query(presto: WarehouseServer, tls: Tls) -> None:
    names, rows = _presto_data(_team_connection(presto, tls), MRR_SQL)
    assert names == ["account_sid", "mrr"]
    [[account, mrr]] = rows
    assert account == ACCOUNT
    # 90 days back from 2025-07-01 is 2025-04-02: the sales of 300 and 601, not the 1000 on 04-01.
    assert float(mrr) == pytest.approx(901 / 3, abs=1e-4)
    assert int(float(mrr)) == 300  # what the team's cell does with it


def test_team_true_cost_query(presto: WarehouseServer, tls: Tls) -> None:
    names, rows = _presto_data(_team_connection(presto, tls), TRUE_COST_SQL)
    assert names == [
        "provider_organization_name",
        "record_count",
        "distinct_pn",
        "customer_cost_w_missing_px",
        "inferred_missing_px_cost",
        "total_revenue",
        "total_twilio_cogs",
        "total_twilio_profit",
    ]
    by_org = {row[0]: row[1:] for row in rows}
    assert set(by_org) == {"SOATSO AB", "Fake Org FR"}
    # Three UK messages (one without a price: it costs the others' average), the latest rate 0.03.
    assert by_org["SOATSO AB"][:2] == [3, 3]  # sums of counts are bigints, as on Presto
    assert by_org["SOATSO AB"][2:] == pytest.approx([0.12, 0.06, 0.18, 0.09, 0.09])
    assert by_org["Fake Org FR"][:2] == [1, 1]
    assert by_org["Fake Org FR"][2:] == pytest.approx([0.10, 0.0, 0.10, 0.04, 0.06])


# ── Presto functions, one at a time (values and types as Trino's function reference gives them) ─────

FUNCTIONS = [
    # (Presto SQL, value through prestodb, the column's Presto type)
    ("DATE_ADD('day', -90, DATE '2025-07-01')", "2025-04-02", "date"),  # a DATE stays a DATE
    ("DATE_ADD('month', 1, DATE '2025-01-31')", "2025-02-28", "date"),
    ("DATE_ADD('hour', 2, TIMESTAMP '2025-07-01 10:00:00')", "2025-07-01 12:00:00.000000", "timestamp(6)"),
    ("replace('+447700900001', '+')", "447700900001", "varchar"),  # two arguments: removes
    ("replace('a-b-c', '-', '+')", "a+b+c", "varchar"),
    ("substr('447700900001', 1, length('447700900001') - 3)", "447700900", "varchar"),
    ("substr('abcdef', 3)", "cdef", "varchar"),
    ("substr('abcdef', -2)", "ef", "varchar"),
    ("length('+4477')", 5, "bigint"),
    ("lower('SMS')", "sms", "varchar"),
    ("CAST('1.5' AS double)", 1.5, "double"),
    ("CAST(2 AS double) * -1.0", -2.0, "double"),
    ("NULLIF(0, 0)", None, "integer"),
    ("NULLIF(CAST(3 AS double) - CAST(1 AS double), 0)", 2.0, "double"),
    ("ROUND(CAST(1 AS double) / 3, 3)", 0.333, "double"),
    ("ROUND(CAST(2 AS DOUBLE) / 3, 3)", 0.667, "double"),
    ("date_trunc('month', DATE '2025-07-15')", "2025-07-01", "date"),
    ("date_trunc('month', TIMESTAMP '2025-07-15 10:30:00')", "2025-07-01 00:00:00.000000", "timestamp(6)"),
    ("try_cast('x' AS integer)", None, "integer"),
    ("try_cast('12' AS integer)", 12, "integer"),
    ("COALESCE(TIMESTAMP '2025-07-01', date '2010-01-01')", "2025-07-01 00:00:00.000000", "timestamp(6)"),
    ("7 / 2", 3, "integer"),  # integer division truncates
    ("-7 / 2", -3, "integer"),  # toward zero, as Java
    ("CAST(7 AS double) / 2", 3.5, "double"),
    ("7 % 3", 1, "integer"),
    ("true = true", True, "boolean"),
]


@pytest.mark.parametrize(("expression", "value", "presto_type"), FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_presto_functions(
    presto: WarehouseServer, tls: Tls, expression: str, value: Any, presto_type: str
) -> None:
    conn = _team_connection(presto, tls)
    cursor = conn.cursor()
    cursor.execute(f"SELECT {expression}")
    assert cursor.fetchall() == [[value]]
    # Presto names an unnamed column _col0; its type is Presto's.
    assert [(d[0], d[1]) for d in cursor.description] == [("_col0", presto_type)]


@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        pytest.param("SELECT COUNT(DISTINCT x) FROM (VALUES 1, 2, 2, 3) AS t(x)", [[3]], id="count-distinct"),
        pytest.param(
            "SELECT approx_distinct(x) FROM (VALUES 1, 2, 2, 3) AS t(x)", [[3]], id="approx_distinct"
        ),
        pytest.param(
            "WITH c AS (SELECT x, g, ROW_NUMBER() OVER (PARTITION BY g ORDER BY x DESC) AS rank "
            "FROM (VALUES (1, 'a'), (2, 'a'), (3, 'b')) AS t(x, g)) "
            "SELECT x FROM c WHERE rank = 1 ORDER BY x",
            [[2], [3]],
            id="cte-row_number",
        ),
        pytest.param(
            "SELECT SUM(CASE WHEN block = true THEN 1 ELSE 0 END), COUNT(*) "
            "FROM hive.accsecai.dsg_fds_raw_events",
            [[4, 17]],  # ints, not decimal strings
            id="sum-of-case-is-bigint",
        ),
        pytest.param(
            "SELECT COUNT(*) FROM hive.public.counters_by_billable_item_complete "
            "WHERE \"date\" >= DATE_ADD('day', -90, DATE '2025-07-01') AND \"date\" < DATE '2025-07-01'",
            [[3]],
            id="date_add-on-a-date-column",
        ),
        pytest.param(
            "SELECT date_trunc('month', \"date\") AS m, COUNT(*) AS n "
            "FROM public.counters_by_billable_item_complete GROUP BY 1 ORDER BY 1",
            [["2025-04-01", 2], ["2025-06-01", 2], ["2025-07-01", 4]],
            id="date_trunc-of-a-date-column",
        ),
        pytest.param(
            "SELECT \"to\" FROM accsec_verify_comms WHERE id = 'SMfake03'", [["+33612345678"]], id="quoted-to"
        ),
        pytest.param("SELECT COUNT(*) FROM rawpii_dim_account", [[1]], id="unqualified-session-schema"),
        pytest.param(
            "SELECT COUNT(*) FROM darwin_transform.billable_item_metadata_alex", [[3]], id="schema-qualified"
        ),
        pytest.param('SELECT COUNT(*) FROM "public".mcc_country', [[5]], id="quoted-schema"),
        pytest.param("SELECT COUNT(*) FROM HIVE.PUBLIC.MCC_COUNTRY", [[5]], id="case-insensitive-names"),
    ],
)
def test_presto_constructs(presto: WarehouseServer, tls: Tls, sql: str, rows: list[list[Any]]) -> None:
    assert _presto_data(_team_connection(presto, tls), sql)[1] == rows


def test_decimal_literals_keep_their_digits(presto: WarehouseServer, tls: Tls) -> None:
    # sqlglot alone would give DuckDB a bare DECIMAL, (18,3): the shim runs first.
    cursor = _team_connection(presto, tls).cursor()
    cursor.execute("SELECT DECIMAL '1.23456', DECIMAL '-0.000001'")
    assert cursor.fetchall() == [["1.23456", "-0.000001"]]
    assert [d[1] for d in cursor.description] == ["decimal(38,5)", "decimal(38,6)"]


def test_trino_reads_trino_sql(team_db: Path, tls: Tls) -> None:
    with WarehouseServer(team_db, dialect="trino", users={USER: PASSWORD}, tls=tls) as server:
        conn = _connect(server)
        assert _rows(conn, "SELECT DATE_ADD('day', -90, DATE '2025-07-01'), replace('+44', '+'), 7 / 2") == [
            [dt.date(2025, 4, 2), "44", 3]
        ]
        assert _rows(conn, BLOCKING_SQL) == [["max", 6, 0.5], ["standard", 3, 0.333]]


# ── errors and faults as Presto gives them ───────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("sql", "name", "code", "message"),
    [
        pytest.param("SELEC 1", "SYNTAX_ERROR", 1, "line 1:7: ", id="syntax"),
        pytest.param("SELECT * FROM", "SYNTAX_ERROR", 1, "end of input", id="syntax-end"),
        pytest.param(
            "SELECT 1 FROM other.public.t", "CATALOG_NOT_FOUND", 44, "Catalog 'other'", id="catalog"
        ),
        pytest.param("SELECT 1 FROM hive.nope.t", "SCHEMA_NOT_FOUND", 45, "Schema 'nope'", id="schema"),
        pytest.param(
            "SELECT 1 FROM hive.public.nope", "TABLE_NOT_FOUND", 46, "Table 'hive.public.nope'", id="table"
        ),
        pytest.param("SELECT nope FROM mcc_country", "COLUMN_NOT_FOUND", 47, "nope", id="column"),
        pytest.param(
            "SELECT no_such_function(1)", "FUNCTION_NOT_FOUND", 6, "no_such_function", id="function"
        ),
        pytest.param("SELECT 1 / 0", "DIVISION_BY_ZERO", 8, "Division by zero", id="division"),
    ],
)
def test_query_errors_through_prestodb(
    presto: WarehouseServer, tls: Tls, sql: str, name: str, code: int, message: str
) -> None:
    import prestodb

    with pytest.raises(prestodb.exceptions.PrestoQueryError) as info:
        _presto_data(_team_connection(presto, tls), sql)
    assert (info.value.error_name, info.value.error_code, info.value.error_type) == (name, code, "USER_ERROR")
    assert message in info.value.message


def test_resources_fault_by_sql_reaches_prestodb(presto: WarehouseServer, tls: Tls) -> None:
    import prestodb

    from credit_bot.notebooks.failures import explain

    presto.inject(WarehouseFault("resources", sql_contains="accsec_verify_comms"))
    conn = _team_connection(presto, tls)
    assert _presto_data(conn, MCC_SQL)[1]  # not matched: answered
    with pytest.raises(prestodb.exceptions.PrestoQueryError) as info:
        _presto_data(conn, TRUE_COST_SQL)
    error = info.value
    assert (error.error_type, error.error_name, error.error_code) == (
        "INSUFFICIENT_RESOURCES",
        "EXCEEDED_GLOBAL_MEMORY_LIMIT",
        131073,
    )
    assert error.message == "Query exhausted resources at this scale factor"
    # The bot reads it as the team's transient failure.
    assert explain(
        type(error).__name__, repr(error), "get_presto_data(true_cost, presto_connection=conn)"
    ).transient
    # Once (times=1): the notebook's retry gets its rows.
    assert len(_presto_data(conn, TRUE_COST_SQL)[1]) == 2
    assert presto.faults() == []


def test_resources_fault_by_position(presto: WarehouseServer, tls: Tls) -> None:
    import prestodb

    presto.inject(WarehouseFault("resources", nth=2, error_name="EXCEEDED_LOCAL_MEMORY_LIMIT"))
    conn = _team_connection(presto, tls)
    assert _presto_data(conn, PARENT_SQL)[1] == [[None]]  # the first statement
    with pytest.raises(prestodb.exceptions.PrestoQueryError) as info:
        _presto_data(conn, PARENT_SQL)  # the second
    assert (info.value.error_name, info.value.error_code) == ("EXCEEDED_LOCAL_MEMORY_LIMIT", 131079)
    assert _presto_data(conn, PARENT_SQL)[1] == [[None]]


def test_unresponsive_coordinator_times_the_client_out(presto: WarehouseServer, tls: Tls) -> None:
    presto.inject(WarehouseFault("unresponsive", sql_contains="mcc_country", hold_s=5))
    conn = _team_connection(presto, tls, request_timeout=(5, 0.5), max_attempts=1)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        _presto_data(conn, MCC_SQL)
    assert time.monotonic() - started < 4  # the client's timeout, not the server's hold
    [held] = [q for q in presto.queries() if "mcc_country" in q.sql]
    assert held.state == "QUEUED"  # never answered
    # The coordinator answers other queries, and this one once the fault is used up.
    assert _presto_data(_team_connection(presto, tls), MCC_SQL)[1]


def test_fault_options() -> None:
    assert WarehouseFault.parse("resources", "#3") == WarehouseFault("resources", nth=3)
    assert WarehouseFault.parse("unresponsive", "true_cost", None) == WarehouseFault(
        "unresponsive", sql_contains="true_cost", times=None
    )
    with pytest.raises(ValueError, match="fault kind"):
        WarehouseFault("flaky")
    with pytest.raises(ValueError, match="error_name"):
        WarehouseFault("resources", error_name="SYNTAX_ERROR")


def test_another_catalog_name(team_db: Path) -> None:
    with WarehouseServer(team_db, dialect="presto", catalog="warehouse") as server:
        conn = _connect(server, None)
        assert _rows(conn, "SELECT COUNT(*) FROM warehouse.public.mcc_country") == [[5]]
        with pytest.raises(Exception, match="CATALOG_NOT_FOUND"):
            _rows(conn, "SELECT COUNT(*) FROM hive.public.mcc_country")
    with pytest.raises(ValueError, match="catalog"):
        WarehouseServer(team_db, catalog="memory")
