"""Build the bundled sample warehouse (a DuckDB file) from ``include/warehouse/seed.json``.

The Verify notebooks (the reference notebook and the team's own) run against the team's Presto warehouse in
production. On a laptop, in tests and in the sandbox they run against this small DuckDB file instead, which
has the schemas, tables and columns the team's notebook and Looker's SQL read (catalog ``hive`` there):

- ``public.counters_by_billable_item_complete`` -- spend per day, account and billable item (what Looker
  sums; ``subtype`` 'sale'/'tax'/…, ``units`` 'USD'/…, ``data_load_date``);
- ``public.rawpii_dim_account`` -- account names (Looker's ``account_dimension``);
- ``public.billable_items`` -- billable item names and countries;
- ``darwin_transform.billable_item_metadata_alex`` -- the product of a billable item ("Authy Verify",
  "Programmable Messaging");
- ``public.mcc_country`` -- mobile country codes of each ISO country (several MCCs per country happen);
- ``public.rawpii_accounts`` -- accounts and their parent account;
- ``accsecai.dsg_fds_raw_events`` -- Fraud Guard events;
- ``public.accsec_verify_comms``, ``public.rawpii_sms_kafka``, ``public.providers``,
  ``public.provider_organizations``, ``public.messaging_reporting_rates`` -- what the team's cost query
  (revenue, provider cost, margin) reads.

Names are schema-qualified in the file. The Presto/Trino sandbox (``harness.warehouse_server``) serves the
file as catalog ``hive``; a direct DuckDB connection (``credit_bot.warehouse`` with conn_type ``duckdb``)
sees it as its own catalog, so queries meant for both use ``public.x``, ``accsecai.x``,
``darwin_transform.x``.

Looker's SQL joins ``rawpii_dim_account`` **unqualified** (Looker relies on the connection's default schema,
``public``). The Presto sandbox sets the connection's schema, but a direct DuckDB connection starts in
``main``, and DuckDB keeps no search path in the file (``SET search_path`` lasts one connection, and the bot
opens connections it does not configure). So the file also has a view ``main.rawpii_dim_account`` over
``public.rawpii_dim_account``: the Looker SQL then runs unchanged on a plain ``duckdb.connect(file)``.

The seed is hand-readable: each ``dsg_fds_raw_events`` entry carries a ``count`` and stands for that many
identical rows, so realistic event volumes stay a few lines long; spend rows leave out ``units`` ('USD') and
``data_load_date`` (the row's ``date``) unless they differ. Other seed keys (``name``, ``note``, ``about``,
``countries``) document the data and are not loaded.

``build(path)`` is deterministic (same seed, same table contents, same row order) and replaces the file
atomically, so a notebook reading the old file never sees a half-written one.

CLI: ``python -m harness.sample_warehouse [PATH]`` (default ``include/warehouse/sample.duckdb``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from harness import PROJECT_ROOT

SEED_PATH = PROJECT_ROOT / "include" / "warehouse" / "seed.json"
DEFAULT_PATH = PROJECT_ROOT / "include" / "warehouse" / "sample.duckdb"

# Table -> ordered (column, DuckDB type). Money is DECIMAL, never a float, so sums are exact.
TABLES: dict[str, list[tuple[str, str]]] = {
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
    "public.rawpii_dim_account": [
        ("sid", "VARCHAR"),
        ("friendly_name", "VARCHAR"),
    ],
    "public.billable_items": [
        ("sid", "VARCHAR"),
        ("friendly_name", "VARCHAR"),
        ("iso_country_code", "VARCHAR"),
    ],
    "darwin_transform.billable_item_metadata_alex": [
        ("sid", "VARCHAR"),
        ("product", "VARCHAR"),
    ],
    "public.mcc_country": [
        ("mcc", "VARCHAR"),
        ("two_letter_country_code", "VARCHAR"),
    ],
    "public.rawpii_accounts": [
        ("sid", "VARCHAR"),
        ("parent_account_sid", "VARCHAR"),
    ],
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
        ("price", "DECIMAL(18,4)"),  # negative: what the customer was charged, as the team's query reads it
        ("error_code", "INTEGER"),
        ("mcc", "VARCHAR"),
        ("data_load_date", "DATE"),
    ],
    "public.providers": [
        ("sid", "VARCHAR"),
        ("friendly_name", "VARCHAR"),
        ("provider_organization_sid", "VARCHAR"),
    ],
    "public.provider_organizations": [
        ("sid", "VARCHAR"),
        ("friendly_name", "VARCHAR"),
    ],
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

# The seed key of each table is the table name without its schema.
SEED_KEYS: dict[str, str] = {table: table.split(".", 1)[1] for table in TABLES}

# Views in DuckDB's default schema, so SQL that relies on the default schema ``public`` (Looker's unqualified
# ``rawpii_dim_account``) runs on a direct DuckDB connection too (see the module docstring).
MAIN_VIEWS: dict[str, str] = {"main.rawpii_dim_account": "public.rawpii_dim_account"}

# Seed defaults per table, so hand-written spend rows only say what differs.
DEFAULTS: dict[str, dict[str, str]] = {"public.counters_by_billable_item_complete": {"units": "USD"}}
# Columns that default to another column of the same row: a spend row is loaded the day it is dated.
SAME_AS: dict[str, dict[str, str]] = {"public.counters_by_billable_item_complete": {"data_load_date": "date"}}


def load_seed(seed_path: Path = SEED_PATH) -> dict[str, Any]:
    """Return the parsed seed file."""
    with seed_path.open(encoding="utf-8") as handle:
        seed: dict[str, Any] = json.load(handle)
    missing = [key for key in SEED_KEYS.values() if key not in seed]
    if missing:
        raise ValueError(f"Seed {seed_path} has no rows for: {', '.join(missing)}")
    return seed


def expand_events(seed: dict[str, Any]) -> list[dict[str, Any]]:
    """The Fraud Guard event rows the seed stands for (each entry repeated ``count`` times)."""
    rows: list[dict[str, Any]] = []
    for entry in seed["dsg_fds_raw_events"]:
        rows.extend([entry] * int(entry.get("count", 1)))
    return rows


def seed_row(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A seed row with the table's defaults filled in (what is loaded for it)."""
    filled = {**DEFAULTS.get(table, {}), **row}
    for column, source in SAME_AS.get(table, {}).items():
        filled.setdefault(column, row.get(source))
    return filled


def build(path: Path = DEFAULT_PATH, seed_path: Path = SEED_PATH) -> Path:
    """Create the DuckDB sample warehouse at ``path`` from the seed and return the absolute path.

    The database is written next to ``path`` under a temporary name and then renamed over ``path``
    (``os.replace`` is atomic on one filesystem), so a rebuild never leaves a partial file behind.
    """
    import duckdb

    seed = load_seed(seed_path)
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _remove(tmp)
    try:
        conn = duckdb.connect(str(tmp))
        try:
            for table, columns in TABLES.items():
                rows = [seed_row(table, row) for row in seed[SEED_KEYS[table]]]
                _create_and_fill(conn, table, columns, rows)
            for view, table in MAIN_VIEWS.items():
                conn.execute(f"CREATE VIEW {view} AS SELECT * FROM {table}")
            # Write everything into the main file so no .wal file has to travel with it.
            conn.execute("CHECKPOINT")
        finally:
            conn.close()
        os.replace(tmp, path)
    finally:
        _remove(tmp)
    # A WAL left by an older, interrupted build would be replayed onto the new file.
    _remove(path.with_name(path.name + ".wal"))
    return path


def _create_and_fill(
    conn: Any, table: str, columns: list[tuple[str, str]], rows: list[dict[str, Any]]
) -> None:
    schema = table.split(".", 1)[0]
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    # Quoted names: the team's tables have columns called "date" and "to".
    names = [name for name, _ in columns]
    quoted = ", ".join(f'"{name}"' for name in names)
    definitions = ", ".join(f'"{name}" {sql_type}' for name, sql_type in columns)
    conn.execute(f"CREATE TABLE {table} ({definitions})")
    # Cast each parameter to the column type: seed money arrives as strings like "4210.3317" and must
    # become DECIMAL exactly (a float parameter would already have lost digits).
    casts = ", ".join(f"CAST(? AS {sql_type})" for _, sql_type in columns)
    if table == "accsecai.dsg_fds_raw_events":
        # One statement per seed entry; range() repeats the row `count` times in seed order.
        statement = f"INSERT INTO {table} ({quoted}) SELECT {casts} FROM range(?)"
        for row in rows:
            conn.execute(statement, [_value(row.get(name)) for name in names] + [int(row.get("count", 1))])
    else:
        statement = f"INSERT INTO {table} ({quoted}) VALUES ({casts})"
        conn.executemany(statement, [[_value(row.get(name)) for name in names] for row in rows])


def _value(value: Any) -> Any:
    # JSON numbers for money would arrive as floats: refuse them rather than round silently.
    if isinstance(value, float):
        raise ValueError(f"Seed values must not be JSON floats (write money as a string): {value!r}")
    return value


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: build the warehouse and print its path."""
    parser = argparse.ArgumentParser(
        prog="python -m harness.sample_warehouse", description=__doc__.splitlines()[0]
    )
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH, help=f"default: {DEFAULT_PATH}")
    parser.add_argument("--seed", type=Path, default=SEED_PATH, help=f"default: {SEED_PATH}")
    args = parser.parse_args(argv)
    print(build(args.path, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
