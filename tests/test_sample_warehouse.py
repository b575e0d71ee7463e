"""Tests for harness.sample_warehouse, the seed it reads, and the sandbox's sample Looker SQL."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from harness import sample_warehouse

REPO = Path(__file__).resolve().parents[1]
SQL_DIR = REPO / "include" / "sandbox" / "sql"
SID = re.compile(r"^(AC|BI|SM|PR|PO)[0-9a-f]{32}$")
PERIOD = ("2026-10-01", "2026-11-01")


@pytest.fixture(scope="module")
def seed() -> dict[str, Any]:
    return json.loads(sample_warehouse.SEED_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_warehouse.build(tmp_path_factory.mktemp("warehouse") / "sample.duckdb")


def _dump(path: Path) -> dict[str, Any]:
    """Every table's column types and rows, in a stable order."""
    with duckdb.connect(str(path), read_only=True) as conn:
        return {
            table: (
                conn.execute(f"DESCRIBE {table}").fetchall(),
                conn.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall(),
            )
            for table in sample_warehouse.TABLES
        }


def test_tables_and_types(built: Path) -> None:
    with duckdb.connect(str(built), read_only=True) as conn:
        tables = {
            f"{schema}.{name}"
            for schema, name in conn.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        }
        assert tables == set(sample_warehouse.TABLES)
        views = {
            f"{schema}.{name}"
            for schema, name in conn.execute(
                "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        }
        assert views == set(sample_warehouse.MAIN_VIEWS)
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = 'counters_by_billable_item_complete'"
            ).fetchall()
        )
        event_types = {
            row[0]: row[1] for row in conn.execute("DESCRIBE accsecai.dsg_fds_raw_events").fetchall()
        }
    assert types["total"] == "DECIMAL(18,4)"  # money is exact, never DOUBLE
    assert types["date"] == "DATE"
    assert types["data_load_date"] == "DATE"
    assert event_types["block"] == "BOOLEAN"
    assert event_types["fraud_guard_enabled"] == "BOOLEAN"


def test_rows_match_the_seed(built: Path, seed: dict[str, Any]) -> None:
    with duckdb.connect(str(built), read_only=True) as conn:
        for table, key in sample_warehouse.SEED_KEYS.items():
            (count,) = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
            expected = (
                sum(r.get("count", 1) for r in seed[key]) if key == "dsg_fds_raw_events" else len(seed[key])
            )
            assert count == expected, table
        total = conn.execute("SELECT SUM(total) FROM public.counters_by_billable_item_complete").fetchone()[0]
        defaults = conn.execute(
            "SELECT COUNT(*) FROM public.counters_by_billable_item_complete WHERE units IS NULL "
            "OR data_load_date IS NULL"
        ).fetchone()[0]
    assert total == sum(Decimal(row["total"]) for row in seed["counters_by_billable_item_complete"])
    assert isinstance(total, Decimal)
    assert defaults == 0  # units and data_load_date are filled in when the seed leaves them out


def test_build_is_deterministic_and_replaces_the_file(built: Path, tmp_path: Path) -> None:
    again = sample_warehouse.build(tmp_path / "again.duckdb")
    assert _dump(again) == _dump(built)
    # Rebuilding over an existing file replaces it (even a stale/garbage one) and leaves no temp files.
    again.write_bytes(b"not a database")
    sample_warehouse.build(again)
    assert _dump(again) == _dump(built)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.duckdb"]


def test_cli_builds_the_given_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "nested" / "cli.duckdb"
    assert sample_warehouse.main([str(target)]) == 0
    assert target.is_file()
    assert capsys.readouterr().out.strip() == str(target.resolve())


def test_seed_float_money_is_refused(tmp_path: Path, seed: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(seed))
    broken["counters_by_billable_item_complete"][0]["total"] = 12.34
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(ValueError, match="JSON floats"):
        sample_warehouse.build(tmp_path / "x.duckdb", seed_file)
    assert not (tmp_path / "x.duckdb").exists()


def test_seed_has_the_cases_the_method_needs(seed: dict[str, Any]) -> None:
    accounts = seed["rawpii_accounts"]
    assert all(SID.match(a["sid"]) for a in accounts)
    assert all(SID.match(b["sid"]) for b in seed["billable_items"])
    assert any(a["parent_account_sid"] for a in accounts)  # a child account
    assert {a["sid"] for a in seed["rawpii_dim_account"]} == {a["sid"] for a in accounts}
    products = {m["product"] for m in seed["billable_item_metadata_alex"]}
    assert any("Authy" in p for p in products)
    assert any("Authy" not in p for p in products)
    item_sids = {b["sid"] for b in seed["billable_items"]}
    assert {m["sid"] for m in seed["billable_item_metadata_alex"]} == item_sids
    countries = [m["two_letter_country_code"] for m in seed["mcc_country"]]
    assert any(countries.count(c) > 1 for c in countries)  # several MCCs for one country
    spend = seed["counters_by_billable_item_complete"]
    # Rows each of Looker's filters leaves out: subtype, units, load date.
    assert {"sale", "tax", "refund"} <= {r["subtype"] for r in spend}
    assert any(r.get("units", "USD") != "USD" for r in spend)
    assert any(r.get("data_load_date", r["date"]) < PERIOD[0] <= r["date"] for r in spend)
    events = seed["dsg_fds_raw_events"]
    # The team's spelling, plus lowercase decoys their case-sensitive filter must leave out.
    assert {e["product_id"] for e in events} == {"Verify", "verify", "messaging"}
    assert {e["channel"] for e in events} == {"sms", "call"}
    # The US and Canada MCCs the team leaves out are mapped to countries with spend and carry events.
    excluded = {"310", "311", "312", "313", "302"}
    assert excluded <= {m["mcc"] for m in seed["mcc_country"]}
    assert excluded <= {e["mcc"] for e in events if e["product_id"] == "Verify"}
    assert {e["protection_mode"] for e in events} == {"basic", "standard", "max"}
    assert {e["fraud_guard_enabled"] for e in events} == {True, False}
    assert {
        "duplicate_request_skipped",
        "pass_country_level_config_request",
        "risk_check_disabled",
        "blocked_high_risk",
        "allowed",
    } <= {e["reason"] for e in events}
    # The cost query's provider organisation the team singles out ('Algo GP').
    assert "SOATSO AB" in {o["friendly_name"] for o in seed["provider_organizations"]}


def test_cost_tables_join_for_one_account(built: Path) -> None:
    """acme's Verify SMS join to prices, providers, organisations and latest rates, as the team's cost
    query joins them (so its cost table is not empty)."""
    with duckdb.connect(str(built), read_only=True) as conn:
        rows = conn.execute(
            """
            SELECT po.friendly_name, COUNT(*), SUM(CAST(k.price AS DOUBLE) * -1.0)
            FROM public.accsec_verify_comms c
            JOIN public.rawpii_sms_kafka k ON k.sid = c.id
            JOIN public.providers p ON p.sid = k.provider_sid
            JOIN public.provider_organizations po ON po.sid = p.provider_organization_sid
            JOIN public.messaging_reporting_rates r
              ON r.provider_sid = k.provider_sid AND r.mcc = c.mcc AND r.mnc = c.mnc
            WHERE c.account_sid = 'AC00000000000000000000000000000a01' AND lower(c.channel) = 'sms'
              AND r.effective_rate IS NOT NULL
            GROUP BY 1 ORDER BY 1
            """
        ).fetchall()
    assert [name for name, _, _ in rows] == ["Example Telecom Ltd (fake)", "SOATSO AB"]
    assert all(count > 0 and cost > 0 for _, count, cost in rows)


def test_unqualified_rawpii_dim_account_resolves_on_a_direct_connection(built: Path) -> None:
    """Looker's SQL names rawpii_dim_account without a schema; a plain DuckDB connection starts in main."""
    with duckdb.connect(str(built), read_only=True) as conn:
        direct = conn.execute("SELECT * FROM rawpii_dim_account ORDER BY sid").fetchall()
        qualified = conn.execute("SELECT * FROM public.rawpii_dim_account ORDER BY sid").fetchall()
    assert direct == qualified
    assert direct
    # Attached under another name (as the Presto sandbox serves it, catalog hive) the view still resolves.
    with duckdb.connect() as conn:
        conn.execute(f"ATTACH '{built}' AS hive (READ_ONLY)")
        assert conn.execute("SELECT COUNT(*) FROM hive.main.rawpii_dim_account").fetchone() == (len(direct),)
        conn.execute("USE hive.public")
        assert conn.execute("SELECT COUNT(*) FROM rawpii_dim_account").fetchone() == (len(direct),)


def _seed_spend(seed: dict[str, Any], account_sid: str, product: str) -> dict[str, Decimal]:
    """October 2026 spend per billable item by Looker's filters, straight from the seed."""
    items = {b["sid"]: b["friendly_name"].upper() for b in seed["billable_items"]}
    products = {m["sid"]: m["product"] for m in seed["billable_item_metadata_alex"]}
    spend: dict[str, Decimal] = {}
    for r in seed["counters_by_billable_item_complete"]:
        name = items[r["billable_item_sid"]]
        if (
            r["account_sid"] == account_sid
            and PERIOD[0] <= r["date"] < PERIOD[1]
            and r.get("units", "USD") == "USD"
            and r["subtype"] in ("sale", "tax")
            and ("OUTBOUND SMS" in name or "OUTBOUND SHORTCODE SMS" in name)
            and not any(word in name for word in ("SAY", "INCOMING", "PHONE NUMBER"))
            and product in products[r["billable_item_sid"]]
            and r.get("data_load_date", r["date"]) >= PERIOD[0]
        ):
            item = r["billable_item_sid"]
            spend[item] = spend.get(item, Decimal(0)) + Decimal(r["total"])
    return spend


LOOKER_COLUMNS = [
    "account_dimension.account_sid",
    "account_dimension.friendly_name",
    "billable_items.sid",
    "billable_item_metadata_alex.product",
    "counters_by_billable_item.total_sum",
    "counters_by_billable_item.quantity_sum",
]


def test_sample_sql_runs_and_returns_the_seed_spend(built: Path, seed: dict[str, Any]) -> None:
    files = sorted(SQL_DIR.glob("*.sql"))
    assert {f.stem for f in files} >= {"verify_acme", "verify_delta", "verify_india", "psms_foxtrot"}
    with duckdb.connect(str(built), read_only=True) as conn:
        for sql_file in files:
            sql = sql_file.read_text(encoding="utf-8")
            verify = sql_file.stem.startswith("verify_")
            # Product detection keys on "Authy" (case-insensitive): PSMS SQL must never contain it.
            assert ("authy" in sql.lower()) == verify, sql_file.name
            (account_sid,) = re.findall(r"account_sid \) = '(AC[0-9a-f]{32})'", sql)
            cursor = conn.execute(sql)  # unchanged, on a direct connection (main.rawpii_dim_account)
            assert [c[0] for c in cursor.description] == LOOKER_COLUMNS
            rows = cursor.fetchall()
            expected = _seed_spend(seed, account_sid, "Authy" if verify else "Programmable Messaging")
            assert {row[2]: row[4] for row in rows} == expected, sql_file.name
            # ORDER BY 5 DESC, and no ties: the team sums the spend as floats in this order.
            assert [row[4] for row in rows] == sorted((row[4] for row in rows), reverse=True)
            assert len({row[4] for row in rows}) == len(rows)
            if sql_file.stem == "verify_echo":
                assert rows == []  # the "period with no rows" sample
            else:
                assert rows, sql_file.name


def test_sample_sql_is_lookers_template() -> None:
    """Every sample is cell 4 of the team's earlier notebook with only the account, period and product
    changed: Looker's own layout and whitespace, no country column (the notebooks add it)."""
    template = (SQL_DIR / "verify_acme.sql").read_text(encoding="utf-8")
    assert template.startswith("SELECT\n    account_dimension.sid  AS ")
    assert template.endswith("GROUP BY\n    1,\n    2,\n    3,\n    4\nORDER BY\n    5 DESC\nLIMIT 500\n")
    assert "iso_country_code" not in template
    assert "LEFT JOIN rawpii_dim_account  AS account_dimension" in template
    assert template.count("TIMESTAMP '2026-10-01'") == 2
    assert template.count("TIMESTAMP '2026-11-01'") == 1
    for sql_file in SQL_DIR.glob("*.sql"):
        sql = sql_file.read_text(encoding="utf-8")
        (account_sid,) = re.findall(r"account_sid \) = '(AC[0-9a-f]{32})'", sql)
        normalised = sql.replace(account_sid, "AC00000000000000000000000000000a01").replace(
            "'%Programmable Messaging%'", "'%Authy%'"
        )
        assert normalised == template, sql_file.name


def test_readme_lists_every_sample_sql() -> None:
    readme = (SQL_DIR / "README.md").read_text(encoding="utf-8")
    for sql_file in SQL_DIR.glob("*.sql"):
        assert f"`{sql_file.name}`" in readme
