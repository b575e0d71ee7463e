"""Tests for harness.warehouse_server: the Trino/Presto client protocol, driven by the real clients.

Every client-side test uses the real ``trino`` or ``prestodb`` package over HTTPS (a certificate made for
the test) with basic auth; a few raw ``requests`` calls pin the documents and headers the clients rely on.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from credit_bot import warehouse
from credit_bot.warehouse import WarehouseConnectionError
from harness import sample_warehouse
from harness.warehouse_server import Tls, WarehouseServer, self_signed_tls

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
