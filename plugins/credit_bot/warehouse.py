"""Open the credit warehouse from inside a notebook kernel.

Notebooks run in a Jupyter kernel subprocess, not in the Airflow task process, so they cannot ask Airflow's
API for connections. The bot's notebook task exports the Airflow connection into the kernel's environment in
Airflow's standard form, ``AIRFLOW_CONN_CREDIT_WAREHOUSE_DEFAULT``, either as JSON::

    {"conn_type": "duckdb", "host": "/abs/path/sample.duckdb"}
    {"conn_type": "trino", "host": "trino.example.com", "port": 443, "login": "svc", "password": "...",
     "schema": "public", "extra": {"catalog": "hive", "protocol": "https"}}
    {"conn_type": "presto", "host": "presto.example.com", "port": 8443, "login": "svc", "password": "...",
     "schema": "public", "extra": {"catalog": "hive", "protocol": "https", "verify": "/etc/ssl/ca.pem"}}

or as an Airflow connection URI (``duckdb://%2Fabs%2Fpath%2Fsample.duckdb``,
``trino://svc:secret@trino.example.com:443/public?catalog=hive``).

``connect()`` reads it and returns a DB-API connection (``cursor()``, ``close()``):

- ``duckdb``: the database file in ``host`` (or extra ``path``), opened **read-only** -- the notebook
  only reads, and read-only opens do not lock out other readers;
- ``trino``: a ``trino.dbapi`` connection (needs the ``trino`` package), mirroring Airflow's Trino provider:
  catalog from extra ``catalog`` (default ``hive``), schema from the connection's schema, basic auth
  when a password is set;
- ``presto``: a ``prestodb.dbapi`` connection (package ``presto-python-client``, the client the team's own
  notebook uses), with the fields and extras of Airflow's Presto provider (``PrestoHook.get_conn``):
  host, port, login, password (basic auth), schema, extras ``catalog`` (default ``hive``), ``protocol``,
  ``source``, ``verify`` (``false`` or a CA bundle path) and ``isolation_level``.

Both server clients also take extra ``session_properties`` (a JSON object, as Airflow's Trino provider
reads it) and default to ``https`` when a password is set: both clients refuse basic auth over plain http.

The env var is parsed here with ``json``/``urllib.parse`` rather than ``airflow.sdk.Connection``: importing
the Airflow SDK takes seconds in a fresh kernel, and its repr includes the password.

The password never appears in an exception message, a log line or a repr.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from credit_bot.errors import SetupError

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "credit_warehouse_default"
SUPPORTED_CONN_TYPES = ("duckdb", "trino", "presto")


class WarehouseConnectionError(SetupError, RuntimeError):
    """The warehouse connection is missing, malformed, unsupported or cannot be opened.

    Raised inside the notebook's kernel; the notebook task reads the failed cell's error by its
    name (``credit_bot.notebooks.failures``), so this class is a setup error in name as well as in kind.
    """


@dataclass(frozen=True)
class WarehouseSettings:
    """The fields of an Airflow connection that the warehouse needs. ``password`` is kept out of the repr."""

    conn_id: str
    conn_type: str
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    # Extras can hold secrets too (tokens, keys): keep them out of the repr as well.
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


def env_var_name(conn_id: str) -> str:
    """Airflow's environment variable name for a connection id."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def read_settings(conn_id: str = DEFAULT_CONN_ID, environ: dict[str, str] | None = None) -> WarehouseSettings:
    """Parse the connection ``conn_id`` from the environment (JSON or URI form)."""
    env = os.environ if environ is None else environ
    name = env_var_name(conn_id)
    raw = env.get(name, "").strip()
    if not raw:
        raise WarehouseConnectionError(
            f"Airflow connection {conn_id!r} is not available to the notebook: environment variable {name} "
            "is not set. The notebook task must export the connection into the kernel's environment "
            f"(or set {name} by hand when running the notebook outside Airflow)."
        )
    settings = _from_json(conn_id, raw) if raw.startswith("{") else _from_uri(conn_id, raw)
    if settings.conn_type not in SUPPORTED_CONN_TYPES:
        raise WarehouseConnectionError(
            f"Airflow connection {conn_id!r} has conn_type {settings.conn_type!r}; the notebook supports "
            f"{', '.join(SUPPORTED_CONN_TYPES)}."
        )
    return settings


def connect(conn_id: str = DEFAULT_CONN_ID) -> Any:
    """Return an open DB-API connection to the warehouse of Airflow connection ``conn_id``."""
    settings = read_settings(conn_id)
    if settings.conn_type == "duckdb":
        return _connect_duckdb(settings)
    if settings.conn_type == "presto":
        return _connect_presto(settings)
    return _connect_trino(settings)


def _from_json(conn_id: str, raw: str) -> WarehouseSettings:
    try:
        data = json.loads(raw)
    except ValueError:
        # `from None`: the decoder's context must not drag the raw text (with its password) into a traceback.
        raise WarehouseConnectionError(
            f"Airflow connection {conn_id!r} is not available to the notebook: "
            f"{env_var_name(conn_id)} starts with '{{' but is not valid JSON."
        ) from None
    if not isinstance(data, dict):
        raise WarehouseConnectionError(f"Airflow connection {conn_id!r}: the JSON form must be an object.")
    extra = data.get("extra") or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra) if extra.strip() else {}
        except ValueError:
            raise WarehouseConnectionError(
                f"Airflow connection {conn_id!r}: 'extra' is a string but not valid JSON."
            ) from None
    if not isinstance(extra, dict):
        raise WarehouseConnectionError(f"Airflow connection {conn_id!r}: 'extra' must be a JSON object.")
    return WarehouseSettings(
        conn_id=conn_id,
        conn_type=_normalise_type(conn_id, data.get("conn_type")),
        host=data.get("host") or None,
        port=_port(conn_id, data.get("port")),
        login=data.get("login") or None,
        password=data.get("password") or None,
        schema=data.get("schema") or None,
        extra=extra,
    )


def _from_uri(conn_id: str, raw: str) -> WarehouseSettings:
    """Parse Airflow's URI form: ``type://login:password@host:port/schema?extra_key=value``."""
    try:
        parts = urlsplit(raw)
    except ValueError:
        raise WarehouseConnectionError(
            f"Airflow connection {conn_id!r}: {env_var_name(conn_id)} is neither JSON nor a valid URI."
        ) from None
    if not parts.scheme or "://" not in raw:
        raise WarehouseConnectionError(
            f"Airflow connection {conn_id!r}: {env_var_name(conn_id)} is neither JSON nor a connection URI "
            "(expected e.g. duckdb://%2Fpath%2Fto%2Ffile.duckdb or a JSON object)."
        )
    # Split netloc by hand: urlsplit().hostname lowercases, which would corrupt a DuckDB file path.
    userinfo, _, hostport = parts.netloc.rpartition("@")
    login, _, password = userinfo.partition(":")
    host, port_text = hostport, ""
    if hostport.count(":") == 1:
        host, _, port_text = hostport.partition(":")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "__extra__" in query:
        try:
            extra: dict[str, Any] = json.loads(query["__extra__"])
        except ValueError:
            raise WarehouseConnectionError(
                f"Airflow connection {conn_id!r}: __extra__ is not valid JSON."
            ) from None
    else:
        extra = dict(query)
    return WarehouseSettings(
        conn_id=conn_id,
        conn_type=_normalise_type(conn_id, parts.scheme),
        host=unquote(host) or None,
        port=_port(conn_id, port_text),
        login=unquote(login) or None,
        password=unquote(password) or None,
        schema=unquote(parts.path.lstrip("/")) or None,
        extra=extra,
    )


def _normalise_type(conn_id: str, conn_type: Any) -> str:
    if not conn_type or not isinstance(conn_type, str):
        raise WarehouseConnectionError(f"Airflow connection {conn_id!r} has no conn_type.")
    # Airflow writes URI schemes with '-' for '_' (e.g. google-cloud-platform).
    return conn_type.strip().lower().replace("-", "_")


def _port(conn_id: str, value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise WarehouseConnectionError(f"Airflow connection {conn_id!r}: port is not a number.") from None


def duckdb_path(settings: WarehouseSettings) -> Path:
    """The DuckDB file of a ``duckdb`` connection: extra ``path``, else ``host``, else the URI path."""
    candidate = settings.extra.get("path") or settings.host
    if not candidate and settings.schema:
        # duckdb:///abs/path.duckdb puts the path in the URI path, i.e. the schema field.
        candidate = "/" + settings.schema
    if not candidate:
        raise WarehouseConnectionError(
            f"Airflow connection {settings.conn_id!r} (duckdb) names no database file: set its host "
            "(or extra 'path') to the absolute path of the .duckdb file."
        )
    return Path(str(candidate)).expanduser()


def _connect_duckdb(settings: WarehouseSettings) -> Any:
    import duckdb

    path = duckdb_path(settings)
    if not path.is_file():
        raise WarehouseConnectionError(
            f"Airflow connection {settings.conn_id!r} points to DuckDB file {path}, which does not exist. "
            "Build the sample warehouse with `python -m harness.sample_warehouse` or fix the host."
        )
    log.info("Opening DuckDB warehouse %s read-only (connection %s)", path, settings.conn_id)
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise WarehouseConnectionError(
            f"Airflow connection {settings.conn_id!r}: cannot open DuckDB file {path}: {exc}"
        ) from None


def _server_options(settings: WarehouseSettings) -> dict[str, Any]:
    """What a Trino or Presto connection needs, read the way Airflow's two providers read it."""
    kind = settings.conn_type
    if not settings.host:
        raise WarehouseConnectionError(f"Airflow connection {settings.conn_id!r} ({kind}) has no host.")
    extra = settings.extra
    user = settings.login or extra.get("user")
    if settings.password and not user:
        raise WarehouseConnectionError(
            f"Airflow connection {settings.conn_id!r} ({kind}) has a password but no login."
        )
    if extra.get("auth") not in (None, "", "basic"):
        raise WarehouseConnectionError(
            f"Airflow connection {settings.conn_id!r} ({kind}): extra auth={extra.get('auth')!r} is not "
            "supported in the notebook; use login and password (basic auth)."
        )
    # https whenever a password travels: both clients refuse basic auth over plain http anyway.
    http_scheme = str(extra.get("protocol") or ("https" if settings.password else "http")).lower()
    if http_scheme not in ("http", "https"):
        raise WarehouseConnectionError(
            f"Airflow connection {settings.conn_id!r} ({kind}): extra protocol must be http or https, "
            f"got {http_scheme!r}."
        )
    if settings.password and http_scheme == "http":
        raise WarehouseConnectionError(
            f"Airflow connection {settings.conn_id!r} ({kind}) sends a password over plain http, which the "
            "client refuses: set extra protocol to https (and verify to the server's CA bundle if it is "
            "not publicly trusted)."
        )
    properties = extra.get("session_properties") or {}
    if isinstance(properties, str):
        try:
            properties = json.loads(properties)
        except ValueError:
            raise WarehouseConnectionError(
                f"Airflow connection {settings.conn_id!r} ({kind}): session_properties is not valid JSON."
            ) from None
    if not isinstance(properties, dict):
        raise WarehouseConnectionError(
            f"Airflow connection {settings.conn_id!r} ({kind}): session_properties must be a JSON object."
        )
    return {
        "host": settings.host,
        "port": settings.port or (443 if http_scheme == "https" else 8080),
        "user": user,
        "catalog": str(extra.get("catalog") or "hive"),
        "schema": settings.schema,
        "http_scheme": http_scheme,
        "verify": _verify(extra.get("verify", True)),
        "verify_set": "verify" in extra,
        "source": str(extra.get("source") or "credit-bot"),
        "session_properties": {str(k): str(v) for k, v in properties.items()},
    }


def _verify(value: Any) -> bool | str:
    """TLS verification as Airflow's providers read it: a bool, "true"/"false", or a CA bundle path."""
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lower() in ("false", "0", "no"):
        return False
    if text.lower() in ("true", "1", "yes", ""):
        return True
    return text


def _http_session(verify: bool | str) -> Any:
    """A requests session that keeps the connection's ``verify`` even when REQUESTS_CA_BUNDLE is set.

    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override ``Session.verify`` on every request, so on
    a machine with either variable (most corporate images) a connection's ``verify`` -- ``false`` or the
    warehouse's CA bundle -- would be silently ignored.
    """
    import requests

    class PinnedVerifySession(requests.Session):
        def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            merged: dict[str, Any] = super().merge_environment_settings(*args, **kwargs)
            merged["verify"] = self.verify
            return merged

    session = PinnedVerifySession()
    session.verify = verify
    return session


def _connect_trino(settings: WarehouseSettings) -> Any:
    try:
        import trino.auth
        import trino.dbapi
    except ImportError:
        raise WarehouseConnectionError(
            f"Airflow connection {settings.conn_id!r} is a Trino connection, but the Python package 'trino' "
            "is not installed in the notebook kernel's environment. Install it (pip install trino, or the "
            "apache-airflow-providers-trino extra) or point the connection at a DuckDB file."
        ) from None
    options = _server_options(settings)
    auth = trino.auth.BasicAuthentication(options["user"], settings.password) if settings.password else None
    log.info(
        "Connecting to Trino %s://%s:%s as %s (connection %s)",
        options["http_scheme"],
        options["host"],
        options["port"],
        options["user"],
        settings.conn_id,
    )
    try:
        conn = trino.dbapi.connect(
            host=options["host"],
            port=options["port"],
            user=options["user"],
            catalog=options["catalog"],
            schema=options["schema"],
            http_scheme=options["http_scheme"],
            auth=auth,
            verify=options["verify"],
            # Only an explicit `verify` is pinned: otherwise REQUESTS_CA_BUNDLE stays the machine's choice.
            http_session=_http_session(options["verify"]) if options["verify_set"] else None,
            source=options["source"],
            session_properties=options["session_properties"] or None,
        )
    except Exception as exc:  # the client's error types vary by version; report the class, not the text
        raise WarehouseConnectionError(
            f"Airflow connection {settings.conn_id!r}: cannot connect to Trino at {settings.host} "
            f"({type(exc).__name__}). Check host, port, credentials and network."
        ) from None
    return _checked(conn, settings, "Trino", options)


def _connect_presto(settings: WarehouseSettings) -> Any:
    try:
        import prestodb.auth
        import prestodb.dbapi
        from prestodb.transaction import IsolationLevel
    except ImportError:
        raise WarehouseConnectionError(
            f"Airflow connection {settings.conn_id!r} is a Presto connection, but the Python package "
            "'presto-python-client' (import name prestodb) is not installed in the notebook kernel's "
            "environment. Install it (pip install presto-python-client, or the "
            "apache-airflow-providers-presto extra) or point the connection at a DuckDB file."
        ) from None
    options = _server_options(settings)
    auth = None
    if settings.password:
        auth = prestodb.auth.BasicAuthentication(options["user"], settings.password)
    level_name = str(settings.extra.get("isolation_level") or "AUTOCOMMIT").upper()
    # IsolationLevel is a plain class of int constants (AUTOCOMMIT, READ_UNCOMMITTED, …), not an Enum.
    isolation_level = getattr(IsolationLevel, level_name, None) if level_name.isupper() else None
    if not isinstance(isolation_level, int):
        raise WarehouseConnectionError(
            f"Airflow connection {settings.conn_id!r} (presto): unknown isolation_level {level_name!r}."
        )
    log.info(
        "Connecting to Presto %s://%s:%s as %s (connection %s)",
        options["http_scheme"],
        options["host"],
        options["port"],
        options["user"],
        settings.conn_id,
    )
    try:
        conn = prestodb.dbapi.connect(
            host=options["host"],
            port=options["port"],
            user=options["user"],
            catalog=options["catalog"],
            schema=options["schema"],
            http_scheme=options["http_scheme"],
            auth=auth,
            source=options["source"],
            session_properties=options["session_properties"],
            isolation_level=isolation_level,
        )
    except Exception as exc:  # the client's error types vary by version; report the class, not the text
        raise WarehouseConnectionError(
            f"Airflow connection {settings.conn_id!r}: cannot connect to Presto at {settings.host} "
            f"({type(exc).__name__}). Check host, port, credentials and network."
        ) from None
    # prestodb.dbapi.connect() takes no `verify`; Airflow's PrestoHook sets it on the connection's session,
    # which every cursor then uses. Swapped before the first cursor, so no request has used the old one.
    if options["verify_set"]:
        conn._http_session = _http_session(options["verify"])
    return _checked(conn, settings, "Presto", options)


def _checked(conn: Any, settings: WarehouseSettings, engine: str, options: dict[str, Any]) -> Any:
    """Run ``SELECT 1`` so a refused login or a TLS problem fails here, with the fix named.

    Both clients only talk to the server on the first query; without this a wrong password would surface
    as the client's raw ``error 401: b'…'`` from inside whichever notebook cell queried first.
    """
    where = f"{engine} at {options['http_scheme']}://{options['host']}:{options['port']}"
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT 1")
        cursor.fetchall()
    except Exception as exc:  # the clients raise their own classes and requests' ones; none may leak text
        # Only fixed wording below: the client's text could quote the server or the request.
        text = str(exc)
        if text.startswith("error 401") or " 401" in text[:40]:
            problem = (
                f"{where} refused the login of user {options['user']!r} (HTTP 401). Check the connection's "
                "login and password."
            )
        elif "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in text:
            problem = (
                f"{where}: TLS verification failed. Set extra verify to the CA bundle of the server's "
                "certificate (or fix protocol/port)."
            )
        elif "ConnectionError" in text or "Connection refused" in text or "ConnectTimeout" in text:
            problem = f"{where} cannot be reached ({type(exc).__name__}). Check host, port and network."
        else:
            problem = f"{where} failed a test query ({type(exc).__name__}). Check the connection's settings."
        raise WarehouseConnectionError(f"Airflow connection {settings.conn_id!r}: {problem}") from None
    return conn
