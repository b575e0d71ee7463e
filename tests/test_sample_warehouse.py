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
SID = re.compile(r"^(AC|BI)[0-9a-f]{32}$")


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
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = 'counters_by_billable_item'"
            ).fetchall()
        )
        event_types = {
            row[0]: row[1] for row in conn.execute("DESCRIBE accsecai.dsg_fds_raw_events").fetchall()
        }
    assert types["total"] == "DECIMAL(18,4)"  # money is exact, never DOUBLE
    assert types["date"] == "DATE"
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
        total = conn.execute("SELECT SUM(total) FROM public.counters_by_billable_item").fetchone()[0]
    assert total == sum(Decimal(row["total"]) for row in seed["counters_by_billable_item"])
    assert isinstance(total, Decimal)


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
    broken["counters_by_billable_item"][0]["total"] = 12.34
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
    names = {b["friendly_name"] for b in seed["billable_items"]}
    assert any("Authy" in n for n in names)
    assert any("Authy" not in n for n in names)
    countries = [m["two_letter_country_code"] for m in seed["mcc_country"]]
    assert any(countries.count(c) > 1 for c in countries)  # several MCCs for one country
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


def _seed_spend(seed: dict[str, Any], account_sid: str, verify: bool) -> Decimal:
    """October 2026 spend of an account, Verify (Authy) or not, straight from the seed."""
    items = {b["sid"]: b["friendly_name"] for b in seed["billable_items"]}
    return sum(
        (
            Decimal(r["total"])
            for r in seed["counters_by_billable_item"]
            if r["account_sid"] == account_sid
            and "2026-10-01" <= r["date"] < "2026-11-01"
            and ("Authy" in items[r["billable_item_sid"]]) == verify
        ),
        Decimal(0),
    )


def test_sample_sql_runs_and_returns_the_seed_spend(built: Path, seed: dict[str, Any]) -> None:
    files = sorted(SQL_DIR.glob("*.sql"))
    assert {f.stem for f in files} >= {"verify_acme", "verify_delta", "psms_foxtrot"}
    with duckdb.connect(str(built), read_only=True) as conn:
        for sql_file in files:
            sql = sql_file.read_text(encoding="utf-8")
            verify = sql_file.stem.startswith("verify_")
            # Product detection keys on "Authy" (case-insensitive): PSMS SQL must never contain it.
            assert ("authy" in sql.lower()) == verify, sql_file.name
            (account_sid,) = re.findall(r"account_sid \) = '(AC[0-9a-f]{32})'", sql)
            cursor = conn.execute(sql)
            assert [c[0] for c in cursor.description] == [
                "billable_items.iso_country_code",
                "counters_by_billable_item.total_sum",
            ]
            rows = cursor.fetchall()
            assert sum((total for _, total in rows), Decimal(0)) == _seed_spend(seed, account_sid, verify)
            if sql_file.stem == "verify_echo":
                assert rows == []  # the "period with no rows" sample
            else:
                assert rows, sql_file.name


def test_readme_lists_every_sample_sql() -> None:
    readme = (SQL_DIR / "README.md").read_text(encoding="utf-8")
    for sql_file in SQL_DIR.glob("*.sql"):
        assert f"`{sql_file.name}`" in readme
