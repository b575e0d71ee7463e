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

SQL runs on DuckDB as sent; one shim only: parameter literals ``DECIMAL '1.2345'`` (how the trino client
sends a ``Decimal``) become ``CAST('1.2345' AS DECIMAL(38, 4))``, since DuckDB would read them as
``DECIMAL(18,3)`` and drop digits. The Looker SQL and the reference notebook's queries need nothing else.

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
from collections.abc import Mapping
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


class QueryFailed(Exception):
    """A query error as the coordinator reports it (state FAILED, an ``error`` object)."""

    def __init__(self, code: tuple[str, int, str], message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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
    ) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {sorted(DIALECTS)}, got {dialect!r}")
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
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ── lifecycle ──────────────────────────────────────────────────────────────────────────────────

    def start(self) -> WarehouseServer:
        import duckdb

        if not self.database.is_file():
            raise FileNotFoundError(
                f"No warehouse at {self.database}: run python -m harness.sample_warehouse"
            )
        self._duck = duckdb.connect(str(self.database), read_only=True)
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
        if authenticated and header_user and header_user != authenticated:
            query.error = QueryFailed(
                PERMISSION_DENIED,
                f"Access Denied: User {authenticated} cannot impersonate user {header_user}",
            )
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
        cursor = self._duck.cursor()
        try:
            found = cursor.execute(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = ?", [schema]
            ).fetchone()
        finally:
            cursor.close()
        if not found:
            raise QueryFailed(SCHEMA_NOT_FOUND, f"Schema '{schema}' does not exist")

    def _describe(self, statement: str, schema: str | None) -> None:
        """Analyse a statement without running it, as a coordinator does on PREPARE."""
        import duckdb

        cursor = self._duck.cursor()
        try:
            if schema:
                self._check_schema(schema)
                cursor.execute(f"SET schema = '{schema}'")
            # The cursor is its own DuckDB connection: the check statement goes away with it.
            cursor.execute(f"PREPARE credit_bot_check AS {statement}")
        except duckdb.Error as exc:
            raise _failure(exc) from None
        finally:
            cursor.close()

    def _select(self, query: Query, sql: str, using: str | None) -> None:
        import duckdb

        cursor = self._duck.cursor()
        try:
            if query.schema:
                self._check_schema(query.schema)
                cursor.execute(f"SET schema = '{query.schema}'")
            parameters: list[Any] = []
            if using:
                parameters = list(cursor.execute(f"SELECT {_decimal_literals(using)}").fetchone() or [])
            expected = _placeholders(sql)
            if expected != len(parameters):
                raise QueryFailed(
                    INVALID_PARAMETER_USAGE,
                    f"Incorrect number of parameters: expected {expected} but found {len(parameters)}",
                )
            cursor.execute(sql, parameters or None)
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
        return QueryFailed(TABLE_NOT_FOUND, message)
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
        return _typed(name, "decimal(38,0)", "decimal", [38, 0])
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
        return str(value) if duck_type.upper() == "HUGEINT" else value
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
    args = parser.parse_args(argv)
    users = None
    if args.user:
        users = {args.user: sys.stdin.readline().rstrip("\n")}
    tls = self_signed_tls(args.tls_dir) if args.tls_dir else None
    with WarehouseServer(args.database, dialect=args.dialect, users=users, tls=tls, port=args.port) as server:
        print(f"{server.dialect.name} protocol on {server.url}" + (f" (CA: {tls.cert_file})" if tls else ""))
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
