"""A local Trino or Presto coordinator in front of the bundled DuckDB sample warehouse.

The team's warehouse is Presto, and production may be Trino. Neither can run here, so this server speaks
their client REST protocol -- what the real ``trino`` and ``prestodb`` clients send and expect -- and
answers from ``include/warehouse/sample.duckdb``. Checked against Trino's "Client REST API" docs
(``docs/src/main/sphinx/develop/client-protocol.md``), ``io.trino.client.QueryError`` and
``StandardErrorCode``, Trino's ``AuthenticationFilter`` / ``PasswordAuthenticator`` (401 answers), and the
two clients' sources (trino-python-client ``trino/client.py`` + ``dbapi.py``, presto-python-client
``prestodb/client.py`` + ``dbapi.py``).

What it does, per dialect (``trino``: ``X-Trino-*`` headers; ``presto``: ``X-Presto-*``):

- ``POST /v1/statement`` with the SQL as body answers ``QUEUED`` with a ``nextUri``; following it the query
  runs (``RUNNING``), then its rows come ``page_size`` at a time, each page with ``columns`` (name, type,
  ``typeSignature``) and the next ``nextUri``; the last answer is ``FINISHED`` without ``nextUri``.
  ``DELETE`` on a ``nextUri`` cancels (204). Unknown query ids get 404.
- Values are JSON as the servers send them: decimals as strings with their scale, dates as
  ``YYYY-MM-DD``, timestamps as ``YYYY-MM-DD HH:MM:SS.ffffff``, booleans and integers as JSON.
- Request headers: ``User``, ``Catalog`` (must be the server's catalog, default ``hive``), ``Schema``
  (the default schema of unqualified names), ``Session`` (known properties only), ``Prepared-Statement``,
  ``Source``. ``SET SESSION`` / ``RESET SESSION`` answer with ``Set-Session`` / ``Clear-Session``;
  ``USE`` with ``Set-Catalog`` / ``Set-Schema``; ``PREPARE`` with ``Added-Prepare`` (``name=`` the
  URL-encoded SQL, kept by the client, not the server); ``EXECUTE name USING …`` reads the statement back
  from the client's ``Prepared-Statement`` header; ``DEALLOCATE PREPARE`` answers ``Deallocated-Prepare``;
  Trino only: ``EXECUTE IMMEDIATE '…' USING …`` (the trino client probes for it and falls back to
  ``PREPARE`` when a server lacks it, as Presto does).
- Query errors: state ``FAILED`` and an ``error`` object (``message``, ``errorCode``, ``errorName``,
  ``errorType``, ``failureInfo``) with Trino's standard codes, e.g. ``SYNTAX_ERROR`` (1),
  ``TABLE_NOT_FOUND`` (46), ``COLUMN_NOT_FOUND`` (47), ``CATALOG_NOT_FOUND`` (44). Messages are DuckDB's.
- Basic auth when ``users`` is given (TLS required then, as on the real servers, whose clients also refuse
  basic auth over http): no or wrong credentials get ``401`` with ``WWW-Authenticate: Basic
  realm="Trino"`` (``"Presto"``) and a one-line plain-text body (``Unauthorized`` /
  ``Access Denied: Invalid credentials``), on every request, not just the POST. A ``User`` header naming
  someone else is refused (``PERMISSION_DENIED``). Passwords and the ``Authorization`` header are never
  logged or recorded.

Presto/Trino SQL: the warehouse file is ATTACHed as the catalog (``hive`` by default), so
``hive.public.t``, ``public.t``, ``"public".t`` and, with the ``Schema`` header ``public``, ``t`` all
resolve; each statement is translated with sqlglot (``read=`` the server's dialect, ``write="duckdb"``, see
:func:`translate`). Known to be covered (checked against Trino's function reference, tested through
prestodb): ``date_add`` (a DATE stays a DATE), ``date_trunc`` (same), ``replace`` with two arguments
(removes), ``substr``, ``length``, ``lower``/``upper``, ``CAST(… AS double)``, ``try_cast``, ``NULLIF``,
``COALESCE`` of ``TIMESTAMP``/``date`` literals, ``ROUND(x, 3)``, ``COUNT(DISTINCT …)``,
``approx_distinct``, ``ROW_NUMBER() OVER (PARTITION BY … ORDER BY …)``, CTEs, ``LIKE``, ``"to"``/``"date"``
quoted identifiers, ``block = true``, integer ``/`` (truncates), ``%``, ``DECIMAL '…'`` literals (exact:
made ``CAST('…' AS DECIMAL(38, s))`` before sqlglot, which would give DuckDB's DECIMAL(18,3)), unnamed
columns named ``_col0`` …, integer sums as ``bigint``. Names are checked as the coordinator does
(CATALOG_NOT_FOUND, SCHEMA_NOT_FOUND, TABLE_NOT_FOUND); sqlglot parse errors are SYNTAX_ERROR
(``line L:C: …``); a function DuckDB lacks is FUNCTION_NOT_FOUND. Known gaps: decimal ``/`` gives a
double (Presto: a decimal), column types through CTEs are guessed by column name.

Faults (``faults=[WarehouseFault(…)]``, ``server.inject(…)``, CLI ``--fail-resources MATCH``,
``--unresponsive MATCH``; MATCH ``#N`` is the Nth statement, anything else a substring of the SQL):
``resources`` fails the query as Presto does when it runs out of memory (``INSUFFICIENT_RESOURCES``,
``EXCEEDED_GLOBAL_MEMORY_LIMIT`` 131073, "Query exhausted resources at this scale factor");
``unresponsive`` never answers its POST, so the client times out (``requests``' ``ReadTimeout``).

``self_signed_tls(directory)`` makes a throwaway certificate for 127.0.0.1; clients verify against it.
CLI: ``python -m harness.warehouse_server --dialect presto --port 8443`` (see ``--help``).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import datetime as dt
import hmac
import itertools
import json
import logging
import re
import secrets
import ssl
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit

log = logging.getLogger(__name__)

STATEMENT_PATH = "/v1/statement"


@dataclass(frozen=True)
class Dialect:
    name: str
    prefix: str  # request/response header prefix
    realm: str  # WWW-Authenticate realm
    exception_type: str  # failureInfo.type of an engine error
    execute_immediate: bool  # Trino 418+ has EXECUTE IMMEDIATE; Presto does not
    version: str


DIALECTS: dict[str, Dialect] = {
    "trino": Dialect("trino", "X-Trino-", "Trino", "io.trino.spi.TrinoException", True, "476"),
    "presto": Dialect(
        "presto", "X-Presto-", "Presto", "com.facebook.presto.spi.PrestoException", False, "0.292"
    ),
}

# System session properties the server accepts (a real coordinator knows ~200; these are the common ones).
SESSION_PROPERTIES = frozenset(
    {
        "query_max_run_time",
        "query_max_execution_time",
        "query_max_memory",
        "join_distribution_type",
        "task_concurrency",
        "optimize_hash_generation",
        "query_priority",
        "time_zone_id",
    }
)

# (name, code, type) from io.trino.spi.StandardErrorCode (Presto shares the numbering).
GENERIC_USER_ERROR = ("GENERIC_USER_ERROR", 0, "USER_ERROR")
SYNTAX_ERROR = ("SYNTAX_ERROR", 1, "USER_ERROR")
PERMISSION_DENIED = ("PERMISSION_DENIED", 4, "USER_ERROR")
NOT_FOUND = ("NOT_FOUND", 5, "USER_ERROR")
INVALID_CAST_ARGUMENT = ("INVALID_CAST_ARGUMENT", 9, "USER_ERROR")
NOT_SUPPORTED = ("NOT_SUPPORTED", 13, "USER_ERROR")
INVALID_SESSION_PROPERTY = ("INVALID_SESSION_PROPERTY", 14, "USER_ERROR")
READ_ONLY_VIOLATION = ("READ_ONLY_VIOLATION", 23, "USER_ERROR")
CATALOG_NOT_FOUND = ("CATALOG_NOT_FOUND", 44, "USER_ERROR")
SCHEMA_NOT_FOUND = ("SCHEMA_NOT_FOUND", 45, "USER_ERROR")
TABLE_NOT_FOUND = ("TABLE_NOT_FOUND", 46, "USER_ERROR")
COLUMN_NOT_FOUND = ("COLUMN_NOT_FOUND", 47, "USER_ERROR")
TYPE_MISMATCH = ("TYPE_MISMATCH", 58, "USER_ERROR")
INVALID_PARAMETER_USAGE = ("INVALID_PARAMETER_USAGE", 80, "USER_ERROR")
GENERIC_INTERNAL_ERROR = ("GENERIC_INTERNAL_ERROR", 65536, "INTERNAL_ERROR")
FUNCTION_NOT_FOUND = ("FUNCTION_NOT_FOUND", 6, "USER_ERROR")
DIVISION_BY_ZERO = ("DIVISION_BY_ZERO", 8, "USER_ERROR")

# INSUFFICIENT_RESOURCES errors (0x0002_0000 + n; the same names and numbers in Trino's and Presto's
# StandardErrorCode). A query that fails this way may well succeed when run again.
INSUFFICIENT_RESOURCES: dict[str, tuple[str, int, str]] = {
    name: (name, code, "INSUFFICIENT_RESOURCES")
    for name, code in (
        ("GENERIC_INSUFFICIENT_RESOURCES", 131072),
        ("EXCEEDED_GLOBAL_MEMORY_LIMIT", 131073),
        ("QUERY_QUEUE_FULL", 131074),
        ("EXCEEDED_TIME_LIMIT", 131075),
        ("CLUSTER_OUT_OF_MEMORY", 131076),
        ("EXCEEDED_CPU_LIMIT", 131077),
        ("EXCEEDED_SPILL_LIMIT", 131078),
        ("EXCEEDED_LOCAL_MEMORY_LIMIT", 131079),
    )
}
# What the team's warehouse (Presto) said when a query ran out of memory.
EXHAUSTED_MESSAGE = "Query exhausted resources at this scale factor"


class QueryFailed(Exception):
    """A query error as the coordinator reports it (state FAILED, an ``error`` object)."""

    def __init__(self, code: tuple[str, int, str], message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


FAULT_KINDS = ("resources", "unresponsive")


@dataclass
class WarehouseFault:
    """A warehouse failure the team has seen, injected into the queries it matches.

    ``kind``: ``resources`` -- the query fails as Presto's does when it runs out of memory (state FAILED,
    ``errorType`` INSUFFICIENT_RESOURCES, ``errorName`` ``error_name``, ``message``); ``unresponsive`` --
    the coordinator never answers the query's POST (held ``hold_s`` seconds, then the connection is
    dropped), so the client's own request timeout fires (``requests`` ``ReadTimeout``, after the
    client's retries; prestodb and trino both retry timeouts).

    A query matches when its SQL (for ``EXECUTE name`` also the prepared statement's) contains
    ``sql_contains`` and/or it is the ``nth`` statement the server received (1-based, every POST counts:
    connection probes, ``SET SESSION``, ``PREPARE`` …); with neither, every query matches. The fault
    hits ``times`` matching queries (``None``: all of them), then is gone.
    """

    kind: str
    sql_contains: str | None = None
    nth: int | None = None
    times: int | None = 1
    error_name: str = "EXCEEDED_GLOBAL_MEMORY_LIMIT"
    message: str = EXHAUSTED_MESSAGE
    hold_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, got {self.kind!r}")
        if self.error_name not in INSUFFICIENT_RESOURCES:
            raise ValueError(f"error_name must be one of {sorted(INSUFFICIENT_RESOURCES)}")
        if (self.nth is not None and self.nth < 1) or (self.times is not None and self.times < 1):
            raise ValueError("nth and times count from 1")

    def matches(self, number: int, sql: str) -> bool:
        if self.nth is not None and number != self.nth:
            return False
        return self.sql_contains is None or self.sql_contains in sql

    @classmethod
    def parse(cls, kind: str, match: str, times: int | None = 1) -> WarehouseFault:
        """The CLI's form: ``#3`` is the third statement, anything else a substring of the SQL."""
        if re.fullmatch(r"#\d+", match):
            return cls(kind, nth=int(match[1:]), times=times)
        return cls(kind, sql_contains=match, times=times)


@dataclass(frozen=True)
class Tls:
    """A server certificate and key; the certificate is also what clients trust (``verify``)."""

    cert_file: Path
    key_file: Path


def self_signed_tls(directory: Path) -> Tls:
    """Write a fresh self-signed certificate for 127.0.0.1/localhost (valid one day) into ``directory``."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "credit-bot warehouse sandbox")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        # A self-signed trust anchor: CA so that strict verification (Python 3.13) accepts it.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "warehouse-sandbox.crt", directory / "warehouse-sandbox.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_file.chmod(0o600)
    return Tls(cert_file, key_file)


@dataclass
class Query:
    id: str
    slug: str
    sql: str
    user: str
    session: dict[str, str]
    catalog: str | None
    schema: str | None
    prepared: dict[str, str]
    created: float = field(default_factory=time.monotonic)
    state: str = "QUEUED"
    columns: list[dict[str, Any]] | None = None
    rows: list[list[Any]] = field(default_factory=list)
    update_type: str | None = None
    error: QueryFailed | None = None
    headers: dict[str, str] = field(default_factory=dict)  # Set-Session, Added-Prepare, … (no prefix)
    number: int = 0  # the nth statement the server received
    fault: WarehouseFault | None = None


@dataclass(frozen=True)
class Received:
    """One request as the server saw it, for tests: never the Authorization header."""

    method: str
    path: str
    headers: dict[str, str]
    body: str


class WarehouseServer:
    """The coordinator: ``with WarehouseServer(db, dialect="presto", users={...}, tls=...) as server:``."""

    def __init__(
        self,
        database: Path,
        *,
        dialect: str = "trino",
        users: Mapping[str, str] | None = None,
        tls: Tls | None = None,
        catalog: str = "hive",
        page_size: int = 2,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Sequence[WarehouseFault] = (),
    ) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {sorted(DIALECTS)}, got {dialect!r}")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", catalog) or catalog in _DUCKDB_CATALOGS:
            # ATTACHed under this name; DuckDB's own catalogs are taken.
            raise ValueError(f"catalog must be a plain lower-case name other than {_DUCKDB_CATALOGS}")
        if users and tls is None:
            raise ValueError("basic auth needs TLS: the trino and prestodb clients refuse it over http")
        self.database = Path(database)
        self.dialect = DIALECTS[dialect]
        self._users = dict(users or {})
        self.tls = tls
        self.catalog = catalog
        self.page_size = max(1, page_size)
        self._address = (host, port)
        self._queries: dict[str, Query] = {}
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._coordinator = secrets.token_hex(3)[:5]
        self.received: list[Received] = []
        self.failed_logins = 0
        self._duck: Any = None
        # The warehouse file's tables: {schema: {table: {column: DuckDB type}}}, read once at start.
        self._tables: dict[str, dict[str, dict[str, str]]] = {}
        self._faults: list[WarehouseFault] = list(faults)
        self._statements = itertools.count(1)
        self._stopping = threading.Event()  # wakes the handlers of unanswered (held) queries
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ── lifecycle ──────────────────────────────────────────────────────────────────────────────────

    def start(self) -> WarehouseServer:
        import duckdb

        if not self.database.is_file():
            raise FileNotFoundError(
                f"No warehouse at {self.database}: run python -m harness.sample_warehouse"
            )
        # The file is ATTACHed as the configured catalog, so catalog-qualified names (hive.public.t) resolve
        # as on the real coordinator; an in-memory database owns the connection and is never written.
        self._duck = duckdb.connect(":memory:")
        path = str(self.database).replace("'", "''")
        self._duck.execute(f"ATTACH '{path}' AS {self.catalog} (READ_ONLY)")
        self._tables = self._read_tables()
        self._stopping.clear()
        httpd = _HttpServer(self._address, _Handler, self)
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
            # Handshake in the handler thread (first read), so a silent client cannot stall accept().
            httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        self._httpd = httpd
        self._thread = threading.Thread(
            # A short poll: stop() (shutdown) waits for the loop to notice, up to this long.
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="warehouse-server",
            daemon=True,
        )
        self._thread.start()
        log.info("Warehouse sandbox (%s) on %s", self.dialect.name, self.url)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._duck is not None:
            self._duck.close()
            self._duck = None

    def __enter__(self) -> WarehouseServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the warehouse server is not running")
        return int(self._httpd.server_address[1])

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def connection(self, login: str, password: str | None = None, **extra: Any) -> dict[str, Any]:
        """The Airflow connection (JSON form) that points ``credit_bot.warehouse`` at this server."""
        extra = {"catalog": self.catalog, "protocol": self.scheme, **extra}
        if self.tls is not None:
            extra.setdefault("verify", str(self.tls.cert_file))
        conn: dict[str, Any] = {
            "conn_type": self.dialect.name,
            "host": "127.0.0.1",
            "port": self.port,
            "login": login,
            "schema": "public",
            "extra": extra,
        }
        if password is not None:
            conn["password"] = password
        return conn

    def queries(self) -> list[Query]:
        with self._lock:
            return list(self._queries.values())

    # ── faults ─────────────────────────────────────────────────────────────────────────────────────

    def inject(self, fault: WarehouseFault) -> WarehouseFault:
        """Queue a fault (also while running); the first queued fault that matches a query wins."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[WarehouseFault]:
        with self._lock:
            return list(self._faults)

    def _take_fault(self, number: int, sql: str) -> WarehouseFault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(number, sql):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def hold(self, query: Query) -> None:
        """Do not answer: wait out the fault's ``hold_s`` (or the server's stop)."""
        assert query.fault is not None
        log.info("Not answering query %s (injected fault)", query.id)
        self._stopping.wait(query.fault.hold_s)

    # ── requests ───────────────────────────────────────────────────────────────────────────────────

    def header(self, name: str) -> str:
        return self.dialect.prefix + name

    def authenticate(self, authorization: str | None) -> tuple[str | None, str | None]:
        """(user, None) when the request may go on, else (None, the 401 message)."""
        if not self._users:
            return None, None
        if not authorization or not authorization.lower().startswith("basic "):
            return None, "Unauthorized"
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("latin-1")
        except (binascii.Error, ValueError):
            return None, "Malformed credentials"
        user, sep, password = decoded.partition(":")
        if not sep or not password:
            return None, "Malformed credentials: password is empty"
        expected = self._users.get(user)
        # compare_digest: no timing hint of how much of the password matched.
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            with self._lock:
                self.failed_logins += 1
            return None, "Access Denied: Invalid credentials"
        return user, None

    def submit(self, sql: str, headers: Mapping[str, str], authenticated: str | None) -> Query:
        header_user = headers.get(self.header("User"))
        user = header_user or authenticated or ""
        query_id = f"{dt.datetime.now(dt.UTC):%Y%m%d_%H%M%S}_{next(self._counter):05d}_{self._coordinator}"
        query = Query(
            id=query_id,
            slug="y" + secrets.token_hex(16),
            sql=sql,
            user=user,
            session=_pairs(headers.get(self.header("Session"), ""), unquote),
            catalog=headers.get(self.header("Catalog")) or None,
            schema=headers.get(self.header("Schema")) or None,
            prepared=_pairs(headers.get(self.header("Prepared-Statement"), ""), unquote_plus),
        )
        query.number = next(self._statements)
        if authenticated and header_user and header_user != authenticated:
            query.error = QueryFailed(
                PERMISSION_DENIED,
                f"Access Denied: User {authenticated} cannot impersonate user {header_user}",
            )
        else:
            query.fault = self._take_fault(query.number, _fault_text(sql, query.prepared))
        with self._lock:
            self._queries[query.id] = query
        return query

    def advance(self, query: Query, stage: str, token: int) -> None:
        """Run the query the first time a client follows its queued ``nextUri``."""
        if stage == "queued" and query.state == "QUEUED":
            query.state = "RUNNING"
            if query.error is None:
                try:
                    self._run(query)
                except QueryFailed as failed:
                    query.error = failed
        if stage == "executing" and query.error is None and token > len(self._pages(query)):
            query.state = "FINISHED"
        if query.error is not None:
            query.state = "FAILED"

    def _pages(self, query: Query) -> list[list[list[Any]]]:
        rows = query.rows
        return [rows[i : i + self.page_size] for i in range(0, len(rows), self.page_size)] or [[]]

    def results(self, query: Query, stage: str, token: int) -> dict[str, Any]:
        """The QueryResults document for one step of the query."""
        base = self.url
        body: dict[str, Any] = {
            "id": query.id,
            "infoUri": f"{base}/ui/query.html?{query.id}",
            "stats": self._stats(query),
            "warnings": [],
        }
        if query.error is not None:
            body["error"] = self._error(query.error)
            return body
        if stage == "post":
            body["nextUri"] = f"{base}{STATEMENT_PATH}/queued/{query.id}/{query.slug}/1"
            return body
        if stage == "queued":
            body["nextUri"] = f"{base}{STATEMENT_PATH}/executing/{query.id}/{query.slug}/1"
            return body
        pages = self._pages(query)
        body["columns"] = query.columns
        if query.update_type:
            body["updateType"] = query.update_type
        if token <= len(pages):
            if pages[token - 1]:
                body["data"] = pages[token - 1]
            body["nextUri"] = f"{base}{STATEMENT_PATH}/executing/{query.id}/{query.slug}/{token + 1}"
        return body

    def _stats(self, query: Query) -> dict[str, Any]:
        done = query.state in ("FINISHED", "FAILED")
        return {
            "state": query.state,
            "queued": query.state == "QUEUED",
            "scheduled": query.state != "QUEUED",
            "nodes": 1,
            "totalSplits": 1,
            "queuedSplits": 0,
            "runningSplits": 0 if done else 1,
            "completedSplits": 1 if done else 0,
            "cpuTimeMillis": 0,
            "wallTimeMillis": 0,
            "queuedTimeMillis": 0,
            "elapsedTimeMillis": int((time.monotonic() - query.created) * 1000),
            "processedRows": len(query.rows),
            "processedBytes": 0,
            "physicalInputBytes": 0,
            "peakMemoryBytes": 0,
            "spilledBytes": 0,
        }

    def _error(self, failed: QueryFailed) -> dict[str, Any]:
        name, code, error_type = failed.code
        return {
            "message": failed.message,
            "errorCode": code,
            "errorName": name,
            "errorType": error_type,
            "failureInfo": {
                "type": self.dialect.exception_type,
                "message": failed.message,
                "suppressed": [],
                "stack": [],
            },
        }

    # ── running SQL ────────────────────────────────────────────────────────────────────────────────

    def _run(self, query: Query) -> None:
        if query.fault is not None and query.fault.kind == "resources":
            raise QueryFailed(INSUFFICIENT_RESOURCES[query.fault.error_name], query.fault.message)
        if query.catalog is not None and query.catalog != self.catalog:
            raise QueryFailed(CATALOG_NOT_FOUND, f"Catalog '{query.catalog}' not found")
        for name in query.session:
            catalog, dot, _ = name.partition(".")
            if (dot and catalog != self.catalog) or (not dot and name not in SESSION_PROPERTIES):
                raise QueryFailed(INVALID_SESSION_PROPERTY, f"Session property '{name}' does not exist")
        sql = query.sql.strip().rstrip(";").strip()
        head = _strip_leading_comments(sql)
        if match := re.fullmatch(r"(?is)SET\s+SESSION\s+([\w.]+)\s*=\s*(.+)", head):
            name, value = match.group(1), _literal_text(match.group(2).strip())
            if "." not in name and name not in SESSION_PROPERTIES:
                raise QueryFailed(INVALID_SESSION_PROPERTY, f"Session property '{name}' does not exist")
            query.headers["Set-Session"] = f"{name}={quote(value)}"
            return self._done(query, "SET SESSION")
        if match := re.fullmatch(r"(?is)RESET\s+SESSION\s+([\w.]+)", head):
            query.headers["Clear-Session"] = match.group(1)
            return self._done(query, "RESET SESSION")
        if match := re.fullmatch(r"(?is)USE\s+(?:(\w+)\.)?(\w+)", head):
            catalog, schema = match.group(1), match.group(2)
            if catalog and catalog != self.catalog:
                raise QueryFailed(CATALOG_NOT_FOUND, f"Catalog '{catalog}' not found")
            self._check_schema(schema)
            if catalog:
                query.headers["Set-Catalog"] = catalog
            query.headers["Set-Schema"] = schema
            return self._done(query, "USE")
        if match := re.fullmatch(r"(?is)PREPARE\s+(\w+)\s+FROM\s+(.+)", head):
            name, statement = match.group(1), match.group(2)
            self._describe(statement, query.schema)  # a real coordinator analyses the statement here
            query.headers["Added-Prepare"] = f"{name}={quote_plus(statement)}"
            return self._done(query, "PREPARE")
        if match := re.fullmatch(r"(?is)DEALLOCATE\s+PREPARE\s+(\w+)", head):
            query.headers["Deallocated-Prepare"] = match.group(1)
            return self._done(query, "DEALLOCATE")
        if match := re.fullmatch(r"(?is)EXECUTE\s+IMMEDIATE\s+'((?:[^']|'')*)'(?:\s+USING\s+(.+))?", head):
            if not self.dialect.execute_immediate:
                raise QueryFailed(
                    SYNTAX_ERROR, "line 1:9: mismatched input 'IMMEDIATE'. Expecting: <identifier>"
                )
            return self._select(query, match.group(1).replace("''", "'"), match.group(2))
        if match := re.fullmatch(r"(?is)EXECUTE\s+(\w+)(?:\s+USING\s+(.+))?", head):
            name = match.group(1)
            if name not in query.prepared:
                raise QueryFailed(NOT_FOUND, f"Prepared statement not found: {name}")
            return self._select(query, query.prepared[name], match.group(2))
        return self._select(query, sql, None)

    def _done(self, query: Query, update_type: str) -> None:
        query.update_type = update_type
        query.columns = [_column("result", "BOOLEAN")]
        query.rows = [[True]]

    def _check_schema(self, schema: str) -> None:
        if schema not in self._tables:
            raise QueryFailed(SCHEMA_NOT_FOUND, f"Schema '{schema}' does not exist")

    def _read_tables(self) -> dict[str, dict[str, dict[str, str]]]:
        tables: dict[str, dict[str, dict[str, str]]] = {}
        cursor = self._duck.cursor()
        try:
            for schema, table, column, data_type in cursor.execute(
                "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_catalog = ? ORDER BY table_schema, table_name, ordinal_position",
                [self.catalog],
            ).fetchall():
                tables.setdefault(schema, {}).setdefault(table, {})[column] = data_type
            for (schema,) in cursor.execute(
                "SELECT schema_name FROM information_schema.schemata WHERE catalog_name = ?", [self.catalog]
            ).fetchall():
                tables.setdefault(schema, {})  # an empty schema exists too
        finally:
            cursor.close()
        return tables

    def _cursor(self, schema: str | None) -> Any:
        """A DuckDB cursor whose default catalog and schema are the session's, as unqualified names need."""
        if schema:
            self._check_schema(schema)
        cursor = self._duck.cursor()
        # Both names are checked (the catalog at construction, the schema against the file) and quoted.
        cursor.execute(f'USE "{self.catalog}"."{schema or "main"}"')
        return cursor

    def translate(self, sql: str, schema: str | None) -> str:
        """``sql`` in the server's dialect (Presto or Trino) as DuckDB SQL; see :func:`translate`."""
        return translate(sql, self.dialect.name, catalog=self.catalog, schema=schema, tables=self._tables)

    def _describe(self, statement: str, schema: str | None) -> None:
        """Analyse a statement without running it, as a coordinator does on PREPARE."""
        import duckdb

        translated = self.translate(statement, schema)
        cursor = self._cursor(schema)
        try:
            # The cursor is its own DuckDB connection: the check statement goes away with it.
            cursor.execute(f"PREPARE credit_bot_check AS {translated}")
        except duckdb.Error as exc:
            raise _failure(exc) from None
        finally:
            cursor.close()

    def _select(self, query: Query, sql: str, using: str | None) -> None:
        import duckdb

        translated = self.translate(sql, query.schema)
        cursor = self._cursor(query.schema)
        try:
            parameters: list[Any] = []
            if using:
                values = translate(f"SELECT {using}", self.dialect.name, name_columns=False)
                parameters = list(cursor.execute(values).fetchone() or [])
            expected = _placeholders(translated)
            if expected != len(parameters):
                raise QueryFailed(
                    INVALID_PARAMETER_USAGE,
                    f"Incorrect number of parameters: expected {expected} but found {len(parameters)}",
                )
            cursor.execute(translated, parameters or None)
            description = cursor.description or []
            query.columns = [_column(name, str(type_code)) for name, type_code, *_ in description]
            types = [str(type_code) for _, type_code, *_ in description]
            query.rows = [
                [_json_value(v, t) for v, t in zip(row, types, strict=True)] for row in cursor.fetchall()
            ]
        except duckdb.Error as exc:
            raise _failure(exc) from None
        finally:
            cursor.close()


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, coordinator: WarehouseServer) -> None:
        self.coordinator = coordinator
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    timeout = 30  # an idle kept-alive connection is closed after this long
    # Keep-alive, as the real coordinators: both clients reuse one requests session, and a TLS handshake
    # per request cost ~100 ms a query here (25-40 ms kept alive). Every answer carries Content-Length.
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: without TCP_NODELAY each answer waits out a delayed ACK.
    disable_nagle_algorithm = True
    server_version = "CreditBotWarehouseSandbox/1.0"

    def do_POST(self) -> None:
        self._handle("POST")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _handle(self, method: str) -> None:
        coordinator = self.server.coordinator
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        path = urlsplit(self.path).path
        # Recorded for tests without Authorization: the password must not live anywhere but the client.
        visible = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        coordinator.received.append(Received(method, path, visible, body))
        if path == "/v1/info" and method == "GET":
            return self._json(
                200,
                {
                    "nodeVersion": {"version": coordinator.dialect.version},
                    "coordinator": True,
                    "starting": False,
                    "environment": "sandbox",
                },
            )
        user, denied = coordinator.authenticate(self.headers.get("Authorization"))
        if denied is not None:
            return self._text(401, denied, {"WWW-Authenticate": f'Basic realm="{coordinator.dialect.realm}"'})
        if path == STATEMENT_PATH and method == "POST":
            if not body.strip():
                return self._text(400, "SQL statement is empty")
            if not (self.headers.get(coordinator.header("User")) or user):
                return self._text(400, "User must be set")
            query = coordinator.submit(body, self.headers, user)
            if query.fault is not None and query.fault.kind == "unresponsive":
                coordinator.hold(query)
                self.close_connection = True  # dropped without an answer, as a hung coordinator's
                return None
            if query.error is not None:
                query.state = "FAILED"
            return self._json(200, coordinator.results(query, "post", 0))
        match = re.fullmatch(rf"{STATEMENT_PATH}/(queued|executing)/([^/]+)/([^/]+)/(\d+)", path)
        if match is None:
            return self._text(404, "Not Found")
        stage, query_id, slug, token = match.group(1), match.group(2), match.group(3), int(match.group(4))
        with coordinator._lock:
            query = coordinator._queries.get(query_id)
        if query is None or query.slug != slug:
            return self._text(404, "Query not found")
        if method == "DELETE":
            query.state = "FAILED" if query.state not in ("FINISHED", "FAILED") else query.state
            return self._empty(204)
        if method != "GET":
            return self._text(405, "Method Not Allowed")
        coordinator.advance(query, stage, token)
        headers = {coordinator.header(name): value for name, value in query.headers.items()}
        return self._json(200, coordinator.results(query, stage, token), headers)

    def _json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        self._send(status, "application/json", data, headers)

    def _text(self, status: int, text: str, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, "text/plain; charset=utf-8", text.encode("utf-8"), headers)

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, content_type: str, data: bytes, headers: Mapping[str, str] | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


# ── Presto/Trino SQL on DuckDB ─────────────────────────────────────────────────────────────────────

# DuckDB's own catalogs: the warehouse file cannot be attached under these names.
_DUCKDB_CATALOGS = ("memory", "system", "temp", "main")
# Units for which Presto's date_add on a DATE gives a DATE (DuckDB's date + interval gives a TIMESTAMP).
_DATE_UNITS = frozenset({"DAY", "WEEK", "MONTH", "QUARTER", "YEAR"})
_INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT"})


@dataclass
class _Columns:
    """Column types of the tables a statement reads: by table alias, and by bare column name."""

    by_alias: dict[str, Mapping[str, str]] = field(default_factory=dict)
    by_name: dict[str, set[str]] = field(default_factory=dict)


def translate(
    sql: str,
    read: str = "presto",
    *,
    catalog: str | None = None,
    schema: str | None = None,
    tables: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
    name_columns: bool = True,
) -> str:
    """One Presto (``read="presto"``) or Trino (``"trino"``) statement as DuckDB SQL, with Presto's semantics.

    sqlglot translates the dialect (functions, literals, quoting). On top of it, where Presto and DuckDB
    differ: ``date_add``/``date_trunc`` of a DATE stay DATEs, integer ``/`` integer stays an integer
    (truncated), and unnamed result columns are ``_col0``, ``_col1`` … (``name_columns``). With ``tables``
    (``{schema: {table: {column: type}}}`` of ``catalog``) table names are checked as the coordinator
    checks them (another catalog: CATALOG_NOT_FOUND, then SCHEMA_NOT_FOUND, TABLE_NOT_FOUND; unqualified
    names are in ``schema``), and the column types tell which values are DATEs or integers.
    Raises :class:`QueryFailed`: SYNTAX_ERROR for what sqlglot cannot parse, NOT_SUPPORTED for what it
    cannot write for DuckDB.
    """
    import sqlglot
    from sqlglot.errors import ErrorLevel, ParseError, TokenError, UnsupportedError

    try:
        # The DECIMAL shim first: sqlglot would make DECIMAL '1.2345' a bare DECIMAL, DuckDB's (18,3).
        statements = [s for s in sqlglot.parse(_decimal_literals(sql), read=read) if s is not None]
    except ParseError as exc:
        raise QueryFailed(SYNTAX_ERROR, _parse_message(exc)) from None
    except TokenError as exc:
        raise QueryFailed(SYNTAX_ERROR, f"line 1:1: {exc}") from None
    if len(statements) != 1:
        raise QueryFailed(SYNTAX_ERROR, f"line 1:1: expected one statement, got {len(statements)}")
    tree = statements[0]
    columns = _Columns()
    if tables is not None:
        columns = _referenced_columns(tree, catalog, schema, tables)
    _presto_semantics(tree, columns)
    if name_columns:
        _name_columns(tree)
    try:
        return tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise QueryFailed(NOT_SUPPORTED, f"Not supported by the warehouse sandbox: {exc}") from None


def _parse_message(exc: Exception) -> str:
    """Presto's ``line L:C: …`` form of a sqlglot parse error."""
    errors: list[dict[str, Any]] = getattr(exc, "errors", None) or [{}]
    first = errors[0]
    description = str(first.get("description") or exc).strip()
    # sqlglot names the end of the statement by its internal sentinel token.
    description = re.sub(r"<Token token_type: TokenType\.SENTINEL[^>]*>", "end of input", description)
    near = first.get("highlight")
    where = f" at '{near}'" if near else ""
    return f"line {first.get('line', 1)}:{first.get('col', 1)}: {description}{where}"


def _referenced_columns(
    tree: Any, catalog: str | None, schema: str | None, tables: Mapping[str, Mapping[str, Mapping[str, str]]]
) -> _Columns:
    from sqlglot import exp

    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    columns = _Columns()
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # a table function, not a name
        # Presto's names are case-insensitive (the Hive connector keeps them lower case).
        name, in_catalog, in_schema = table.name.lower(), table.catalog.lower(), table.db.lower()
        if not in_catalog and not in_schema and name in ctes:
            continue
        if in_catalog and catalog and in_catalog != catalog:
            raise QueryFailed(CATALOG_NOT_FOUND, f"Catalog '{in_catalog}' not found")
        table_schema = in_schema or schema
        if not table_schema or table_schema == "information_schema":
            continue
        if table_schema not in tables:
            raise QueryFailed(SCHEMA_NOT_FOUND, f"Schema '{table_schema}' does not exist")
        if name not in tables[table_schema]:
            raise QueryFailed(TABLE_NOT_FOUND, f"Table '{catalog}.{table_schema}.{name}' does not exist")
        found = tables[table_schema][name]
        columns.by_alias[table.alias_or_name.lower()] = found
        for column, column_type in found.items():
            columns.by_name.setdefault(column.lower(), set()).add(column_type)
    return columns


def _type_kind(type_text: str) -> str | None:
    base = type_text.upper().split("(")[0].strip()
    if base == "DATE":
        return "date"
    if base.startswith("TIMESTAMP"):
        return "timestamp"
    return "integer" if base in _INTEGER_TYPES else None


def _kind(node: Any, columns: _Columns) -> str | None:
    """``date``, ``timestamp``, ``integer`` or None (unknown or other) -- what Presto would type ``node``."""
    from sqlglot import exp

    if isinstance(node, (exp.Paren, exp.Neg, exp.Sum, exp.Min, exp.Max, exp.Abs)):
        return _kind(node.this, columns)
    if isinstance(node, (exp.Cast, exp.TryCast)):
        return _type_kind(node.to.sql(dialect="duckdb"))
    if isinstance(node, exp.Literal):
        return "integer" if node.is_int else None
    if isinstance(node, (exp.Count, exp.RowNumber, exp.IntDiv, exp.Length, exp.ApproxDistinct)):
        return "integer"
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Mod)):
        left, right = _kind(node.this, columns), _kind(node.expression, columns)
        return "integer" if left == right == "integer" else None
    if isinstance(node, exp.Case):
        kinds = {_kind(branch.args.get("true"), columns) for branch in node.args.get("ifs") or []}
        kinds.add(_kind(node.args.get("default"), columns))
        return kinds.pop() if len(kinds) == 1 else None
    if isinstance(node, exp.CurrentDate):
        return "date"
    if isinstance(node, exp.Column) and isinstance(node.this, exp.Identifier):
        name, qualifier = node.name.lower(), node.table.lower()
        if qualifier in columns.by_alias:
            found = {t for c, t in columns.by_alias[qualifier].items() if c.lower() == name}
        else:
            found = columns.by_name.get(name, set())
        kinds = {_type_kind(t) for t in found}
        return kinds.pop() if len(kinds) == 1 else None
    return None


def _presto_semantics(tree: Any, columns: _Columns) -> None:
    """Rewrite, in place and innermost first, what DuckDB would answer differently from Presto."""
    from sqlglot import exp

    for node in reversed(list(tree.walk(bfs=False))):
        unit = node.args.get("unit")
        if isinstance(node, exp.DateAdd) and unit is not None and unit.name.upper() in _DATE_UNITS:
            if _kind(node.this, columns) == "date":
                _wrap_cast(node, "DATE")  # date_add('day', -90, DATE '…') is a DATE in Presto
        elif isinstance(node, (exp.TimestampTrunc, exp.DateTrunc)):
            if _kind(node.this, columns) == "date":
                _wrap_cast(node, "DATE")  # date_trunc('month', a_date) is a DATE in Presto
        elif isinstance(node, exp.Div) and _integers(node, columns):
            # Presto: 7 / 2 = 3 (truncated toward zero); DuckDB's / gives 3.5, its // truncates too.
            node.replace(exp.IntDiv(this=node.this, expression=node.expression))


def _integers(node: Any, columns: _Columns) -> bool:
    return _kind(node.this, columns) == "integer" == _kind(node.expression, columns)


def _wrap_cast(node: Any, to: str) -> None:
    from sqlglot import exp

    cast = exp.Cast(to=exp.DataType.build(to))
    node.replace(cast)
    cast.set("this", node)


def _name_columns(tree: Any) -> None:
    """Presto names an unnamed result column ``_col`` and its position (``SELECT count(*)`` → ``_col0``)."""
    from sqlglot import exp

    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.this  # the first SELECT of a UNION names the columns
    if not isinstance(select, exp.Select):
        return
    for position, projection in enumerate(list(select.expressions)):
        if not isinstance(projection, (exp.Alias, exp.Column, exp.Star, exp.Dot)):
            projection.replace(exp.alias_(projection.copy(), f"_col{position}"))


def _fault_text(sql: str, prepared: Mapping[str, str]) -> str:
    """What a fault's ``sql_contains`` looks at: the SQL, and for ``EXECUTE name`` the statement too."""
    if match := re.match(r"(?is)\s*EXECUTE\s+(\w+)", _strip_leading_comments(sql)):
        return f"{sql}\n{prepared.get(match.group(1), '')}"
    return sql


# ── SQL text and values ────────────────────────────────────────────────────────────────────────────


def _pairs(header: str, decode: Any) -> dict[str, str]:
    """``a=1,b=2`` (values URL-encoded) as a dict; what the clients send for sessions and statements."""
    pairs: dict[str, str] = {}
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if sep and name:
            pairs[name.strip()] = decode(value.strip())
    return pairs


def _strip_leading_comments(sql: str) -> str:
    return re.sub(r"^(?:\s*--[^\n]*\n|\s*/\*.*?\*/)*\s*", "", sql, flags=re.S)


def _literal_text(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    return text


_LITERAL_OR_DECIMAL = re.compile(r"(?i)\bDECIMAL\s*'(-?)(\d*)(?:\.(\d*))?'|'(?:[^']|'')*'")


def _decimal_literals(expressions: str) -> str:
    """``DECIMAL '12.3456'`` → ``CAST('12.3456' AS DECIMAL(38, 4))``; string literals are left alone."""

    def replace(match: re.Match[str]) -> str:
        if match.group(2) is None:
            return match.group(0)
        sign, whole, fraction = match.group(1), match.group(2) or "0", match.group(3) or ""
        return f"CAST('{sign}{whole}.{fraction or '0'}' AS DECIMAL(38, {len(fraction)}))"

    return _LITERAL_OR_DECIMAL.sub(replace, expressions)


_STRING_OR_MARK = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|\?")


def _placeholders(sql: str) -> int:
    return sum(1 for match in _STRING_OR_MARK.finditer(sql) if match.group(0) == "?")


def _failure(exc: Exception) -> QueryFailed:
    import duckdb

    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, duckdb.ParserException):
        return QueryFailed(SYNTAX_ERROR, message)
    if isinstance(exc, duckdb.CatalogException):
        if re.search(r"Function with name \S+ does not exist", message):
            # A Presto function sqlglot passed through and DuckDB does not have.
            return QueryFailed(FUNCTION_NOT_FOUND, message)
        return QueryFailed(TABLE_NOT_FOUND, message)
    if "division by zero" in message.lower():
        return QueryFailed(DIVISION_BY_ZERO, "Division by zero")
    if isinstance(exc, duckdb.BinderException):
        return QueryFailed(COLUMN_NOT_FOUND if "not found" in message.lower() else TYPE_MISMATCH, message)
    if isinstance(exc, duckdb.ConversionException):
        return QueryFailed(INVALID_CAST_ARGUMENT, message)
    if "read-only" in message.lower():
        return QueryFailed(READ_ONLY_VIOLATION, message)
    if isinstance(exc, duckdb.NotImplementedException):
        return QueryFailed(NOT_SUPPORTED, message)
    if isinstance(exc, duckdb.InvalidInputException):
        return QueryFailed(GENERIC_USER_ERROR, message)
    return QueryFailed(GENERIC_INTERNAL_ERROR, message)


_SIMPLE_TYPES = {
    "BOOLEAN": "boolean",
    "TINYINT": "tinyint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "FLOAT": "real",
    "DOUBLE": "double",
    "DATE": "date",
    "BLOB": "varbinary",
}


def _column(name: str, duck_type: str) -> dict[str, Any]:
    """A ``columns`` entry: name, the engine's type text and its ``typeSignature``."""
    upper = duck_type.upper()
    if match := re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", upper):
        precision, scale = int(match.group(1)), int(match.group(2))
        return _typed(name, f"decimal({precision},{scale})", "decimal", [precision, scale])
    if upper == "HUGEINT":
        # DuckDB sums integers into HUGEINT; Presto's sum of integers is a bigint.
        return _typed(name, "bigint", "bigint", [])
    if upper.startswith("TIMESTAMP"):
        return _typed(name, "timestamp(6)", "timestamp", [6])
    if upper in _SIMPLE_TYPES:
        return _typed(name, _SIMPLE_TYPES[upper], _SIMPLE_TYPES[upper], [])
    return _typed(name, "varchar", "varchar", [2147483647])


def _typed(name: str, type_text: str, raw_type: str, arguments: list[int]) -> dict[str, Any]:
    return {
        "name": name,
        "type": type_text,
        "typeSignature": {
            "rawType": raw_type,
            "arguments": [{"kind": "LONG", "value": a} for a in arguments],
        },
    }


def _json_value(value: Any, duck_type: str) -> Any:
    """A value the way the coordinator writes it into ``data``."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def main(argv: list[str] | None = None) -> int:
    """Serve the sample warehouse until interrupted (Ctrl-C)."""
    from harness import PROJECT_ROOT

    parser = argparse.ArgumentParser(
        prog="python -m harness.warehouse_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--dialect", choices=sorted(DIALECTS), default="trino")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--database", type=Path, default=PROJECT_ROOT / "include" / "warehouse" / "sample.duckdb"
    )
    parser.add_argument("--tls-dir", type=Path, help="serve https with a fresh self-signed certificate here")
    parser.add_argument("--user", help="require basic auth as this user; the password is read from stdin")
    parser.add_argument("--catalog", default="hive", help="the catalog the warehouse file is served as")
    parser.add_argument(
        "--fail-resources",
        action="append",
        default=[],
        metavar="MATCH",
        help=f"fail the query matching MATCH (#N: the Nth statement; else a substring of its SQL) with "
        f"INSUFFICIENT_RESOURCES EXCEEDED_GLOBAL_MEMORY_LIMIT, {EXHAUSTED_MESSAGE!r} (repeatable)",
    )
    parser.add_argument(
        "--unresponsive",
        action="append",
        default=[],
        metavar="MATCH",
        help="do not answer the query matching MATCH (as --fail-resources): the client times out",
    )
    parser.add_argument(
        "--fault-times", type=int, default=1, help="how many matching queries each fault hits (0: all)"
    )
    args = parser.parse_args(argv)
    users = None
    if args.user:
        users = {args.user: sys.stdin.readline().rstrip("\n")}
    tls = self_signed_tls(args.tls_dir) if args.tls_dir else None
    times = args.fault_times or None
    faults = [WarehouseFault.parse("resources", match, times) for match in args.fail_resources] + [
        WarehouseFault.parse("unresponsive", match, times) for match in args.unresponsive
    ]
    with WarehouseServer(
        args.database,
        dialect=args.dialect,
        users=users,
        tls=tls,
        port=args.port,
        catalog=args.catalog,
        faults=faults,
    ) as server:
        print(f"{server.dialect.name} protocol on {server.url}" + (f" (CA: {tls.cert_file})" if tls else ""))
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
