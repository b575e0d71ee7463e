"""Tests for credit_bot.warehouse: reading the exported Airflow connection and opening the warehouse."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import pytest

from credit_bot import warehouse
from credit_bot.warehouse import WarehouseConnectionError
from harness import sample_warehouse

ENV = "AIRFLOW_CONN_CREDIT_WAREHOUSE_DEFAULT"
SECRET = "fake-warehouse-password-for-tests"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A mixed-case directory: URI parsing must not lowercase the path.
    return sample_warehouse.build(tmp_path_factory.mktemp("WareHouse") / "Sample.duckdb")


# The sample seed's accounts (include/warehouse/seed.json), counted by the test itself.
SEED_ACCOUNTS = len(json.loads(sample_warehouse.SEED_PATH.read_text())["rawpii_accounts"])


def _count(conn: Any) -> int:
    cursor = conn.cursor()
    cursor.execute("SELECT COUNT(*) FROM public.rawpii_accounts")
    return int(cursor.fetchone()[0])


def test_env_var_name() -> None:
    assert warehouse.env_var_name("credit_warehouse_default") == ENV


def test_duckdb_json_connection_is_read_only(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, json.dumps({"conn_type": "duckdb", "host": str(db), "password": SECRET}))
    conn = warehouse.connect()
    try:
        assert _count(conn) == SEED_ACCOUNTS
        with pytest.raises(duckdb.Error, match=r"(?i)read.only"):
            conn.execute("DELETE FROM public.rawpii_accounts")
    finally:
        conn.close()


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("duckdb://{q}", id="uri-host"),
        pytest.param("duckdb://?path={q}", id="uri-extra-path"),
        pytest.param('{{"conn_type": "duckdb", "extra": {{"path": "{p}"}}}}', id="json-extra-path"),
        pytest.param(
            '{{"conn_type": "duckdb", "extra": "{{\\"path\\": \\"{p}\\"}}"}}', id="json-extra-string"
        ),
    ],
)
def test_duckdb_path_forms(value: str, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, value.format(q=quote(str(db), safe=""), p=str(db)))
    assert warehouse.duckdb_path(warehouse.read_settings()) == db
    conn = warehouse.connect()
    try:
        assert _count(conn) == SEED_ACCOUNTS
    finally:
        conn.close()


def test_uri_fields_are_decoded() -> None:
    uri = f"trino://svc%40corp:{quote(SECRET)}@Trino.Example.com:8443/public?catalog=hive&protocol=https"
    settings = warehouse.read_settings(environ={ENV: uri})
    assert settings.conn_type == "trino"
    assert (settings.host, settings.port, settings.login, settings.schema) == (
        "Trino.Example.com",
        8443,
        "svc@corp",
        "public",
    )
    assert settings.password == SECRET
    assert settings.extra == {"catalog": "hive", "protocol": "https"}
    assert SECRET not in repr(settings)


def test_missing_connection_names_the_conn_and_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(WarehouseConnectionError) as info:
        warehouse.connect()
    assert "'credit_warehouse_default' is not available to the notebook" in str(info.value)
    assert ENV in str(info.value)


def test_missing_duckdb_file_says_how_to_build_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, json.dumps({"conn_type": "duckdb", "host": str(tmp_path / "nope.duckdb")}))
    with pytest.raises(WarehouseConnectionError, match=r"does not exist.*harness\.sample_warehouse"):
        warehouse.connect()
    assert not (tmp_path / "nope.duckdb").exists()  # read-only: never creates an empty database


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param('{"conn_type": "duckdb", "password": "' + SECRET + '"', "not valid JSON", id="bad-json"),
        pytest.param(
            json.dumps({"conn_type": "postgres", "host": "db", "password": SECRET}),
            "supports duckdb",
            id="type",
        ),
        pytest.param(
            json.dumps({"conn_type": "duckdb", "password": SECRET}), "names no database file", id="nofile"
        ),
        pytest.param(json.dumps({"host": "x", "password": SECRET}), "has no conn_type", id="no-type"),
        pytest.param(f"trino://u:{SECRET}@host:notaport/s", "port is not a number", id="bad-port"),
        pytest.param(f"just-some-text-{SECRET}", "neither JSON nor a connection URI", id="not-a-uri"),
        pytest.param(
            json.dumps({"conn_type": "trino", "password": SECRET, "login": "svc"}),
            "has no host",
            id="trino-nohost",
        ),
    ],
)
def test_errors_are_specific_and_never_show_the_password(
    value: str, message: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(ENV, value)
    # Pretend trino is installed so the trino case reaches its own validation.
    monkeypatch.setitem(sys.modules, "trino", _fake_trino({}))
    monkeypatch.setitem(sys.modules, "trino.auth", sys.modules["trino"].auth)
    monkeypatch.setitem(sys.modules, "trino.dbapi", sys.modules["trino"].dbapi)
    with pytest.raises(WarehouseConnectionError) as info:
        warehouse.connect()
    assert message in str(info.value)
    assert SECRET not in str(info.value)
    # `from None`: no chained exception that could carry the raw value into a traceback.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    assert SECRET not in caplog.text


def _fake_trino(calls: dict[str, Any]) -> types.ModuleType:
    module = types.ModuleType("trino")

    class BasicAuthentication:
        def __init__(self, user: str, password: str) -> None:
            self.user, self.password = user, password

        def __repr__(self) -> str:
            return f"BasicAuthentication({self.user!r}, ***)"

    class Connection:
        """Enough of a DB-API connection for connect()'s SELECT 1."""

        def cursor(self) -> Any:
            return types.SimpleNamespace(
                execute=lambda sql: calls.setdefault("probe", sql), fetchall=lambda: [[1]]
            )

    def connect(**kwargs: Any) -> Any:
        calls.update(kwargs)
        return Connection()

    module.auth = types.SimpleNamespace(BasicAuthentication=BasicAuthentication)  # type: ignore[attr-defined]
    module.dbapi = types.SimpleNamespace(connect=connect)  # type: ignore[attr-defined]
    return module


def test_trino_connection_follows_the_airflow_provider(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: dict[str, Any] = {}
    fake = _fake_trino(calls)
    monkeypatch.setitem(sys.modules, "trino", fake)
    monkeypatch.setitem(sys.modules, "trino.auth", fake.auth)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "trino.dbapi", fake.dbapi)  # type: ignore[attr-defined]
    conn = {
        "conn_type": "trino",
        "host": "trino.example.com",
        "port": 443,
        "login": "svc",
        "password": SECRET,
        "schema": "public",
        "extra": {"catalog": "warehouse"},
    }
    monkeypatch.setenv(ENV, json.dumps(conn))
    caplog.set_level("DEBUG", logger="credit_bot.warehouse")
    assert warehouse.connect() is not None
    assert calls["probe"] == "SELECT 1"  # the login is checked in connect(), not in a later notebook cell
    assert calls["host"] == "trino.example.com"
    assert calls["port"] == 443
    assert calls["user"] == "svc"
    assert calls["catalog"] == "warehouse"
    assert calls["schema"] == "public"
    assert calls["http_scheme"] == "https"
    assert calls["auth"].password == SECRET
    assert "trino.example.com" in caplog.text
    assert SECRET not in caplog.text


def test_trino_without_the_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import trino` raise ImportError, whatever is installed.
    monkeypatch.setitem(sys.modules, "trino", None)
    monkeypatch.setenv(ENV, json.dumps({"conn_type": "trino", "host": "h", "login": "u", "password": SECRET}))
    with pytest.raises(WarehouseConnectionError, match="Python package 'trino' is not installed") as info:
        warehouse.connect()
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("conn", "message"),
    [
        pytest.param(
            {"login": "svc", "password": SECRET, "extra": {"protocol": "http"}},
            "over plain http",
            id="http-password",
        ),
        pytest.param({"password": SECRET}, "has a password but no login", id="no-login"),
        pytest.param(
            {"login": "svc", "extra": {"auth": "kerberos"}}, "auth='kerberos' is not supported", id="kerberos"
        ),
        pytest.param({"login": "svc", "extra": {"protocol": "ftp"}}, "must be http or https", id="protocol"),
        pytest.param(
            {"login": "svc", "extra": {"isolation_level": "levels"}}, "unknown isolation_level", id="level"
        ),
        pytest.param(
            {"login": "svc", "extra": {"session_properties": "{not json"}},
            "session_properties is not valid JSON",
            id="props",
        ),
        pytest.param(
            {"login": "svc", "extra": {"session_properties": [1]}}, "must be a JSON object", id="props-list"
        ),
    ],
)
def test_presto_connection_errors_name_the_field(
    conn: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, json.dumps({"conn_type": "presto", "host": "presto.example.com", **conn}))
    with pytest.raises(WarehouseConnectionError, match=message) as info:
        warehouse.connect()
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None


def test_presto_without_the_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prestodb", None)
    monkeypatch.setenv(
        ENV, json.dumps({"conn_type": "presto", "host": "h", "login": "u", "password": SECRET})
    )
    with pytest.raises(WarehouseConnectionError, match=r"'presto-python-client' .* is not installed") as info:
        warehouse.connect()
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(True, True, id="true"),
        pytest.param("false", False, id="false-text"),
        pytest.param("False", False, id="false-title"),
        pytest.param("true", True, id="true-text"),
        pytest.param("/etc/ssl/ca.pem", "/etc/ssl/ca.pem", id="bundle"),
    ],
)
def test_verify_reads_like_the_airflow_providers(value: Any, expected: Any) -> None:
    assert warehouse._verify(value) == expected


@pytest.mark.parametrize("verify", [pytest.param(False, id="off"), pytest.param("/fake/ca.pem", id="bundle")])
def test_a_connections_verify_survives_requests_ca_bundle(
    verify: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import requests

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    plain = requests.Session()
    plain.verify = verify
    # What requests does on its own: the environment wins over the session (the bug this works around).
    assert plain.merge_environment_settings("https://h", {}, None, None, None)["verify"] != verify
    session = warehouse._http_session(verify)
    assert session.merge_environment_settings("https://h", {}, None, None, None)["verify"] == verify
