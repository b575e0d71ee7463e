"""Tests for the reference Verify notebook (include/notebooks/verify_credit.ipynb).

The expected credits are computed here independently of the notebook: the team's method (their notebook,
``verify_credit_recommendation.ipynb``, as the product brief describes it) in plain Python over the rows of
include/warehouse/seed.json (not the DuckDB file), with the team's float arithmetic and its quirks (event
shares without the US/Canada MCCs but block rates with them, ROUND(…, 3), truncated msg_count, per-mode
cents, NaN modes counting 0, fraud spend 0 without sales in the 90 days before the period). The notebook
is then executed with papermill against a warehouse built from the same seed in tmp_path, and its
structured output (``application/vnd.credit-bot.context+json``) must match to the cent.

When the team's own notebook is present (``/work/shared/team`` or ``$CREDIT_BOT_TEAM_NOTEBOOK``), a ported
copy of it runs on every sample through the Presto sandbox, and the reference notebook's number must be
the sum of the team's ``credit_amount`` parts.

Notebook runs are slow (a kernel start each), so every sample request is executed once per module and the
tests read the executed notebooks.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "include" / "notebooks" / "verify_credit.ipynb"
SEED = REPO / "include" / "warehouse" / "seed.json"
SQL_DIR = REPO / "include" / "sandbox" / "sql"
TEAM_NOTEBOOK = Path(
    os.environ.get("CREDIT_BOT_TEAM_NOTEBOOK", "/work/shared/team/verify_credit_recommendation.ipynb")
)
CONTEXT_MIME = "application/vnd.credit-bot.context+json"
# Extra output appended to a copy of the notebook so the test can see the `credit_amount` variable itself.
PROBE_MIME = "application/x-credit-bot-test-probe+json"
FAKE_PASSWORD = "fake-warehouse-password-for-tests"
FAKE_EXTRA_SECRET = "fake-extra-token-for-tests"
FAKE_WRONG_PASSWORD = "fake-wrong-warehouse-password-for-tests"
SERVER_USER = "analyst"
PERIOD = (date(2026, 10, 1), date(2026, 11, 1))


def _sid(tag: str) -> str:
    return "AC" + tag.rjust(32, "0")


# Sample request -> account the SQL filters on. The period of every sample is October 2026.
REQUESTS: dict[str, str] = {
    "verify_acme": _sid("a01"),
    "verify_bolt": _sid("b01"),
    "verify_cobalt": _sid("c01"),
    "verify_delta": _sid("d01"),
    "verify_echo": _sid("e01"),
    "verify_golf": _sid("9a01"),
    "verify_hotel": _sid("9b01"),
    "verify_india": _sid("9c01"),
}
COMPUTED = ["verify_acme", "verify_bolt", "verify_delta", "verify_hotel"]
# The team's filters (their notebook and their warehouse's spelling).
VERIFY_PRODUCT_ID = "Verify"
EXCLUDED_MCCS = {"310", "311", "312", "313", "302"}
NOT_SCANNED = ("pass_country_level_config_request", "risk_check_disabled")
MODES = ("basic", "standard", "max")
EXPECTED_BLOCK_RATES = (0.80, 0.90, 1.0)


# --- the oracle: the team's method over the seed rows --------------------------------------------------


class NoEvents(Exception):
    """No Fraud Guard events at all: the team's notebook raises ZeroDivisionError, ours must raise too."""


@dataclass(frozen=True)
class Expected:
    fraud_spend: Decimal
    countries: list[str]
    mccs: set[str]
    events: int
    scanned_events: int
    has_mrr: bool
    block_rates: dict[str, float]
    msg_counts: dict[str, int]
    parts: list[str]  # the team's displayed parts, e.g. ["$4,948.80", "$nan", "$nan"]

    @property
    def team_string(self) -> str:
        return "".join(self.parts)

    @property
    def cents(self) -> dict[str, Decimal | None]:
        return {mode: _part_value(part) for mode, part in zip(MODES, self.parts, strict=True)}

    @property
    def credit(self) -> Decimal | None:
        """The team's number: the sum of the parts, $nan as 0; None when no part is a number."""
        values = [v for v in self.cents.values() if v is not None]
        return sum(values, Decimal("0.00")) if values else None


def _part_value(part: str) -> Decimal | None:
    text = part.removeprefix("$").replace(",", "")
    return None if text in ("nan", "inf", "-inf") else Decimal(text)


def team_number(credit_amount: str) -> Decimal | None:
    """The sum of the team notebook's concatenated ``credit_amount`` ('$4,948.80$nan$nan' -> 4948.80)."""
    parts = re.findall(r"\$(-?[\d,]+\.\d\d|nan|-?inf)", credit_amount)
    assert "".join(f"${p}" for p in parts) == credit_amount, credit_amount
    values = [v for v in (_part_value(p) for p in parts) if v is not None]
    return sum(values, Decimal("0.00")) if values else None


def _d(text: str) -> date:
    return date.fromisoformat(text)


def _round3(count: int, blocked: int) -> float:
    """SQL's ROUND(CAST(blocked AS DOUBLE) / count, 3): half away from zero, to 3 decimals."""
    exact = Fraction(blocked, count)
    return float(
        (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(Decimal("0.001"), ROUND_HALF_UP)
    )


def looker_rows(
    seed: dict[str, Any], account_sid: str, start: date, end: date
) -> list[tuple[str, str, Decimal]]:
    """(billable item, country, spend) of the Looker SQL: Looker's filters, ORDER BY spend DESC."""
    items = {b["sid"]: b for b in seed["billable_items"]}
    products = {m["sid"]: m["product"] for m in seed["billable_item_metadata_alex"]}
    spend: dict[str, Decimal] = {}
    for row in seed["counters_by_billable_item_complete"]:
        name = items[row["billable_item_sid"]]["friendly_name"].upper()
        if (
            row["account_sid"] == account_sid
            and start <= _d(row["date"]) < end
            and row.get("units", "USD") == "USD"
            and row["subtype"] in ("sale", "tax")
            and ("OUTBOUND SMS" in name or "OUTBOUND SHORTCODE SMS" in name)
            and not any(word in name for word in ("SAY", "INCOMING", "PHONE NUMBER"))
            and "Authy" in products[row["billable_item_sid"]]
            and _d(row.get("data_load_date", row["date"])) >= start
        ):
            spend[row["billable_item_sid"]] = spend.get(row["billable_item_sid"], Decimal(0)) + Decimal(
                row["total"]
            )
    rows = [(sid, items[sid]["iso_country_code"], total) for sid, total in spend.items()]
    return sorted(rows, key=lambda r: r[2], reverse=True)


def expected_credit(
    seed: dict[str, Any],
    account_sid: str,
    start: date,
    end: date,
    product_id: str = VERIFY_PRODUCT_ID,
    exclude_us_from_block_rates: bool = False,
) -> Expected | None:
    """The team's method over seed rows. None when the Looker SQL has no rows; NoEvents when there is spend
    but no Fraud Guard event (the team's ZeroDivisionError). ``exclude_us_from_block_rates`` computes what
    the number would be without the team's block-rate population quirk (to show the quirk moves money)."""
    spend_rows = looker_rows(seed, account_sid, start, end)
    if not spend_rows:
        return None
    fraud_spend = sum((total for _, _, total in spend_rows), Decimal(0))
    fraud_total = 0.0
    for _, _, total in spend_rows:  # pandas: astype(float).sum(), in the query's row order
        fraud_total += float(total)
    countries = list(dict.fromkeys(country for _, country, _ in spend_rows))
    accounts = {account_sid} | {
        a["sid"] for a in seed["rawpii_accounts"] if a["parent_account_sid"] == account_sid
    }
    mccs = {m["mcc"] for m in seed["mcc_country"] if m["two_letter_country_code"] in countries}
    last_day = end - timedelta(days=1)

    total = scanned = 0
    per_mode = dict.fromkeys(MODES, 0)  # scanned events per mode, without US/Canada
    blocking: dict[str, list[int]] = {}  # mode -> [scanned, blocked], with US/Canada
    for entry in seed["dsg_fds_raw_events"]:
        in_scope = (
            entry["account_sid"] in accounts
            and start <= _d(entry["data_load_date"]) <= last_day
            and entry["product_id"] == product_id
            and entry["channel"] == "sms"
            and entry["mcc"] in mccs
            and entry["reason"] != "duplicate_request_skipped"
        )
        if not in_scope:
            continue
        is_scanned = entry["fraud_guard_enabled"] and entry["reason"] not in NOT_SCANNED
        if is_scanned and (entry["mcc"] not in EXCLUDED_MCCS or not exclude_us_from_block_rates):
            counts = blocking.setdefault(entry["protection_mode"], [0, 0])
            counts[0] += entry["count"]
            counts[1] += entry["count"] if entry["block"] else 0
        if entry["mcc"] in EXCLUDED_MCCS:
            continue
        total += entry["count"]
        if is_scanned:
            scanned += entry["count"]
            per_mode[entry["protection_mode"]] += entry["count"]
    if total == 0:
        raise NoEvents(account_sid)

    parent = next(a["parent_account_sid"] for a in seed["rawpii_accounts"] if a["sid"] == account_sid)
    mrr_account = parent or account_sid
    has_mrr = any(
        row["account_sid"] == mrr_account
        and start - timedelta(days=90) <= _d(row["date"]) < start
        and row["subtype"] == "sale"
        for row in seed["counters_by_billable_item_complete"]
    )

    percent_scanned = scanned / total
    scanned_fraud = fraud_total * percent_scanned if has_mrr else 0.0
    total_msg = sum(counts[0] for counts in blocking.values())
    scanned_msg = total_msg * percent_scanned
    parts: list[str] = []
    block_rates: dict[str, float] = {}
    msg_counts: dict[str, int] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for mode, e in zip(MODES, EXPECTED_BLOCK_RATES, strict=True):
            share = np.float64(per_mode[mode]) / np.float64(scanned) if scanned else np.float64(math.nan)
            fraud_cost = share * np.float64(scanned_fraud)
            msg = share * np.float64(scanned_msg)
            msg_count = 0 if np.isnan(msg) else int(msg)
            b = np.float64(_round3(*blocking[mode]) if mode in blocking else math.nan)
            unit_cost = fraud_cost / (np.float64(msg_count) - np.float64(msg_count) * b)
            implied = unit_cost * np.float64(msg_count)
            credit = implied * np.float64(e) - (implied - fraud_cost)
            parts.append(f"${credit:,.2f}")
            block_rates[mode] = float(b)
            msg_counts[mode] = msg_count
    return Expected(fraud_spend, countries, mccs, total, scanned, has_mrr, block_rates, msg_counts, parts)


# --- running the notebook ------------------------------------------------------------------------------


@dataclass
class Run:
    path: Path
    error: Exception | None
    context: dict[str, Any] | None
    probe: dict[str, Any] | None


def _outputs(path: Path, mime: str) -> list[Any]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [
        output["data"][mime]
        for cell in nb["cells"]
        for output in cell.get("outputs", [])
        if mime in output.get("data", {})
    ]


@pytest.fixture(scope="module")
def seed() -> dict[str, Any]:
    return json.loads(SEED.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def warehouse_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harness import sample_warehouse

    return sample_warehouse.build(tmp_path_factory.mktemp("warehouse") / "sample.duckdb")


def execute_samples(
    out_dir: Path, conn: dict[str, Any], names: list[str] | None = None, notebook_path: Path = NOTEBOOK
) -> tuple[dict[str, Run], dict[str, float]]:
    """Execute the probed notebook once per sample request against ``conn``; also each run's seconds."""
    import nbformat
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    # A copy of the notebook with one extra cell that reports the `credit_amount` variable itself.
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            f'display({{"{PROBE_MIME}": {{"credit_amount": credit_amount, '
            '"type": type(credit_amount).__name__, "repr": repr(credit_amount)}}, raw=True)'
        )
    )
    probed = out_dir / f"{notebook_path.stem}_probed.ipynb"
    nbformat.write(notebook, probed)

    results: dict[str, Run] = {}
    seconds: dict[str, float] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_CREDIT_WAREHOUSE_DEFAULT", json.dumps(conn))
        mp.setenv(
            "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO / "plugins"), os.environ.get("PYTHONPATH")]))
        )
        for name in names or list(REQUESTS):
            output = out_dir / f"{name}.ipynb"
            error: Exception | None = None
            started = time.perf_counter()
            try:
                papermill.execute_notebook(
                    str(probed),
                    str(output),
                    parameters={"looker": (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")},
                    kernel_name="python3",
                    progress_bar=False,
                    cwd=str(out_dir),
                )
            except papermill.PapermillExecutionError as exc:
                error = exc
            seconds[name] = time.perf_counter() - started
            contexts = _outputs(output, CONTEXT_MIME)
            probes = _outputs(output, PROBE_MIME)
            results[name] = Run(
                output, error, contexts[-1] if contexts else None, probes[-1] if probes else None
            )
    return results, seconds


Execution = tuple[dict[str, Run], dict[str, float]]
ServerExecution = tuple[dict[str, Run], dict[str, float], list[Any]]


@pytest.fixture(scope="module")
def duckdb_execution(tmp_path_factory: pytest.TempPathFactory, warehouse_file: Path) -> Execution:
    """Execute the notebook once per sample request on DuckDB; the connection carries fake secrets."""
    conn = {
        "conn_type": "duckdb",
        "host": str(warehouse_file),
        "login": "analyst",
        "password": FAKE_PASSWORD,
        "extra": {"token": FAKE_EXTRA_SECRET},
    }
    return execute_samples(tmp_path_factory.mktemp("executed"), conn)


@pytest.fixture(scope="module")
def runs(duckdb_execution: Execution) -> dict[str, Run]:
    return duckdb_execution[0]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from harness.warehouse_server import self_signed_tls

    return self_signed_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server_executions(
    tmp_path_factory: pytest.TempPathFactory, warehouse_file: Path, tls: Any
) -> dict[str, ServerExecution]:
    """The same runs through the Trino and the Presto protocol: real clients, HTTPS, basic auth."""
    from harness.warehouse_server import WarehouseServer

    results = {}
    for dialect in ("trino", "presto"):
        with WarehouseServer(
            warehouse_file, dialect=dialect, users={SERVER_USER: FAKE_PASSWORD}, tls=tls, page_size=2
        ) as server:
            conn = server.connection(
                SERVER_USER, FAKE_PASSWORD, session_properties={"query_max_run_time": "10m"}
            )
            executed, seconds = execute_samples(tmp_path_factory.mktemp(dialect), conn)
            results[dialect] = (executed, seconds, list(server.received))
    return results


# --- static checks (fast) ------------------------------------------------------------------------------


def test_parameters_cell_declares_looker() -> None:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code_cells = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
    first = code_cells[0]
    assert "parameters" in first["metadata"].get("tags", [])
    statements = [line for line in "".join(first["source"]).splitlines() if line and not line.startswith("#")]
    assert statements == ['looker = ""']
    # The committed notebook is clean: no outputs from someone's run (they could hold data or secrets).
    assert all(not cell.get("outputs") and cell.get("execution_count") is None for cell in code_cells)


def test_markdown_names_the_quirks_it_reproduces() -> None:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    text = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    for quirk in ("310, 311, 312, 313, 302", "ROUND(", "truncated", ".2f", "NaN", "MRR", "$0.00$0.00$0.00"):
        assert quirk in text, quirk


def test_oracle_covers_the_edge_cases(seed: dict[str, Any]) -> None:
    """The sample data really makes the cases the notebook tests rely on."""
    acme, bolt, cobalt, delta, hotel, india = (
        expected_credit(seed, REQUESTS[f"verify_{name}"], *PERIOD)
        for name in ("acme", "bolt", "cobalt", "delta", "hotel", "india")
    )
    assert acme
    assert bolt
    assert cobalt
    assert delta
    assert hotel
    assert india
    assert all(v is not None for v in acme.cents.values())
    assert acme.cents["basic"] is not None
    assert acme.cents["basic"] < 0 < acme.credit
    assert [mode for mode, v in bolt.cents.items() if v is not None] == ["standard"]  # modes without traffic
    assert bolt.parts[0] == bolt.parts[2] == "$nan"
    assert cobalt.parts == ["$nan"] * 3
    assert cobalt.credit is None
    assert cobalt.events > 0 == cobalt.scanned_events
    assert delta.block_rates["max"] == 1.0
    assert delta.msg_counts["max"] > 0
    assert delta.cents["max"] is None
    assert india.parts == ["$0.00"] * 3
    assert not india.has_mrr
    assert all(e.has_mrr for e in (acme, bolt, cobalt, delta, hotel))
    assert expected_credit(seed, REQUESTS["verify_echo"], *PERIOD) is None
    with pytest.raises(NoEvents):
        expected_credit(seed, REQUESTS["verify_golf"], *PERIOD)
    # The lowercase decoys are real traffic under a case-insensitive filter: the answers would change.
    assert expected_credit(seed, REQUESTS["verify_golf"], *PERIOD, product_id="verify") is not None
    lowercase_acme = expected_credit(seed, REQUESTS["verify_acme"], *PERIOD, product_id="verify")
    assert lowercase_acme is not None
    assert lowercase_acme.credit != acme.credit


def test_oracle_us_and_canada_are_out_of_the_shares_but_in_the_block_rates(seed: dict[str, Any]) -> None:
    hotel = expected_credit(seed, REQUESTS["verify_hotel"], *PERIOD)
    assert hotel is not None
    assert hotel.countries == ["US", "GB", "CA"]  # Looker's row order (spend descending)
    # Shares count 316 (US, not on the team's list) and GB's 234/235, not 310-313 and 302.
    assert hotel.events == 66 + 41 + 133 + 57 + 29 + 12
    # The block rates count 310-313 and 302 too, and that moves money.
    assert hotel.block_rates["standard"] == round(
        (400 + 66 + 133) / (400 + 260 + 180 + 66 + 41 + 133 + 57), 3
    )
    without_quirk = expected_credit(seed, REQUESTS["verify_hotel"], *PERIOD, exclude_us_from_block_rates=True)
    assert without_quirk is not None
    assert without_quirk.credit != hotel.credit
    assert hotel.credit is not None
    assert hotel.credit > 0


def _team_rewrite(looker: str) -> str:
    """The team notebook's own rewrite of the Looker SQL (their cell, verbatim logic), for comparison."""
    split_marker = "-- sql for creating the total and/or determining pivot columns"
    if split_marker in looker:
        looker = looker.split(split_marker)[0]
    if "AS iso_country_code" not in looker:
        select_match = re.search(r"SELECT\s+(.*?)(?=\s+FROM)", looker, flags=re.DOTALL)
        if select_match:
            select_block = select_match.group(1).strip()
            looker = looker.replace(
                select_block, select_block + ",\n    billable_items.iso_country_code AS iso_country_code"
            )
    group_by_match = re.search(r"GROUP BY\s+(.*?)(?=\s+ORDER BY|\s+LIMIT|$)", looker, flags=re.DOTALL)
    if group_by_match:
        group_by_block = group_by_match.group(1).strip()
        if "billable_items.iso_country_code" not in group_by_block:
            looker = looker.replace(group_by_block, group_by_block + ",\n    billable_items.iso_country_code")
    return looker


@pytest.fixture(scope="module")
def rewrite() -> Any:
    """The notebook's ``with_country_column``, loaded from its cells (functions and constants only)."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    scope: dict[str, Any] = {"re": re}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        tree = ast.parse("".join(cell["source"]))
        keep = [
            node
            for node in tree.body
            if isinstance(node, ast.FunctionDef)
            or (
                isinstance(node, ast.Assign)
                and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets)
                and isinstance(node.value, ast.Constant)
            )
        ]
        exec(compile(ast.Module(body=keep, type_ignores=[]), "notebook", "exec"), scope)  # noqa: S102
    return scope["with_country_column"]


def test_rewrite_matches_the_teams_on_lookers_sql(rewrite: Any) -> None:
    for sql_file in SQL_DIR.glob("*.sql"):
        sql = sql_file.read_text(encoding="utf-8")
        assert rewrite(sql) == _team_rewrite(sql), sql_file.name
        # With Looker's totals query after the marker: cut there, as the team does.
        totals = sql + "-- sql for creating the total and/or determining pivot columns\nSELECT 1 FROM x\n"
        assert rewrite(totals) == _team_rewrite(totals).rstrip() + "\n"


def test_rewrite_handles_other_shapes(rewrite: Any) -> None:
    old_shape = (
        'SELECT\n    billable_items.iso_country_code  AS "billable_items.iso_country_code",\n'
        '    COALESCE(SUM(t.total ), 0) AS "counters_by_billable_item.total_sum"\nFROM t\n'
        "GROUP BY\n    1\nORDER BY\n    2 DESC\nFETCH NEXT 500 ROWS ONLY"
    )
    assert rewrite(old_shape) == old_shape + "\n"  # the country is there already: unchanged
    no_group = (
        "SELECT COALESCE(SUM(t.total), 0) AS \"x.total_sum\" FROM t WHERE t.note = 'FROM GROUP BY'\nLIMIT 500"
    )
    rewritten = rewrite(no_group)
    assert rewritten.startswith(
        'SELECT COALESCE(SUM(t.total), 0) AS "x.total_sum",\n'
        "    billable_items.iso_country_code AS iso_country_code"
        " FROM t WHERE t.note = 'FROM GROUP BY'\nGROUP BY\n    billable_items.iso_country_code\nLIMIT 500"
    )
    nested = "SELECT a, (SELECT MAX(b) FROM u GROUP BY c) AS m FROM t GROUP BY 1, 2 FETCH NEXT 5 ROWS ONLY"
    assert rewrite(nested) == (
        "SELECT a, (SELECT MAX(b) FROM u GROUP BY c) AS m,\n"
        "    billable_items.iso_country_code AS iso_country_code"
        " FROM t GROUP BY 1, 2,\n    billable_items.iso_country_code FETCH NEXT 5 ROWS ONLY\n"
    )
    with pytest.raises(ValueError, match="no top-level SELECT"):
        rewrite("-- just a comment\n")


def test_team_number_parses_the_concatenated_string() -> None:
    assert team_number("$4,948.80$nan$nan") == Decimal("4948.80")
    assert team_number("$-1,180.65$5,985.52$5,421.48") == Decimal("10226.35")
    assert team_number("$nan$nan$nan") is None
    assert team_number("$0.00$0.00$0.00") == 0


# --- executed notebooks (slow) -------------------------------------------------------------------------


def _expected(seed: dict[str, Any], name: str) -> Expected:
    expected = expected_credit(seed, REQUESTS[name], *PERIOD)
    assert expected is not None
    return expected


@pytest.mark.integration
@pytest.mark.parametrize("name", COMPUTED)
def test_credit_matches_the_team_method_to_the_cent(
    name: str, runs: dict[str, Run], seed: dict[str, Any]
) -> None:
    run = runs[name]
    assert run.error is None, f"{name} failed: {run.error}"
    expected = _expected(seed, name)
    assert run.context is not None
    assert run.context["team_credit_amount"] == expected.team_string
    assert Decimal(run.context["credit_amount"]) == expected.credit
    assert Decimal(run.context["fraud_spend"]) == expected.fraud_spend
    assert run.context["countries"] == expected.countries
    assert set(run.context["mccs"]) == expected.mccs
    assert run.context["account_sid"] == REQUESTS[name]
    assert (run.context["period_start"], run.context["period_end"]) == ("2026-10-01", "2026-11-01")
    assert run.context["period_last_day"] == "2026-10-31"
    assert (run.context["events"], run.context["scanned_events"]) == (
        expected.events,
        expected.scanned_events,
    )
    for mode in run.context["modes"]:
        assert mode["shown"] == expected.parts[MODES.index(mode["mode"])]
        assert mode["msg_count"] == expected.msg_counts[mode["mode"]]
        cents = expected.cents[mode["mode"]]
        assert mode["credit"] == (None if cents is None else str(cents))
    # The context is what the bot stores next to the reply: it must survive strict JSON (no NaN).
    assert json.loads(json.dumps(run.context, allow_nan=False)) == run.context


@pytest.mark.integration
@pytest.mark.parametrize("name", COMPUTED)
def test_credit_amount_variable_is_a_plain_cent_exact_number(
    name: str, runs: dict[str, Run], seed: dict[str, Any]
) -> None:
    probe = runs[name].probe
    expected = _expected(seed, name)
    assert probe is not None
    assert probe["type"] == "float"
    # float -> shortest repr -> Decimal gives back the cents exactly.
    assert Decimal(probe["repr"]) == expected.credit
    assert probe["credit_amount"] == float(expected.credit)  # type: ignore[arg-type]


@pytest.mark.integration
def test_modes_without_traffic_are_nan_and_count_zero(runs: dict[str, Run]) -> None:
    context = runs["verify_bolt"].context
    assert context is not None
    by_mode = {mode["mode"]: mode for mode in context["modes"]}
    assert by_mode["standard"]["traffic_share"] == 1.0
    for mode in ("basic", "max"):
        assert by_mode[mode]["shown"] == "$nan"
        assert by_mode[mode]["credit"] is None
        assert by_mode[mode]["block_rate"] is None
    assert Decimal(context["credit_amount"]) == Decimal(by_mode["standard"]["credit"])


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "team_string", "why"),
    [
        ("verify_cobalt", "$nan$nan$nan", "No protection mode gives a credit"),
        ("verify_india", "$0.00$0.00$0.00", "no sale in the 90 days before the period"),
    ],
)
def test_no_basis_raises_after_recording_the_context(
    name: str, team_string: str, why: str, runs: dict[str, Run], seed: dict[str, Any]
) -> None:
    import papermill

    run = runs[name]
    assert isinstance(run.error, papermill.PapermillExecutionError)
    assert run.error.ename == "NoCreditBasis"
    assert why in run.error.evalue
    assert team_string in run.error.evalue
    assert _expected(seed, name).team_string == team_string
    assert run.context is not None  # what an analyst needs to decide by hand
    assert run.context["team_credit_amount"] == team_string
    assert run.context["credit_amount"] is None
    assert run.probe is None  # no credit_amount the bot could read


@pytest.mark.integration
def test_no_fraud_guard_events_at_all_raises_instead_of_zero(runs: dict[str, Run]) -> None:
    import papermill

    run = runs["verify_golf"]
    assert isinstance(run.error, papermill.PapermillExecutionError)
    assert run.error.ename == "NoFraudGuardEvents"
    assert f"No Fraud Guard events for {REQUESTS['verify_golf']}" in run.error.evalue
    assert "product_id 'Verify', channel 'sms'" in run.error.evalue
    assert "no basis for a credit" in run.error.evalue
    assert run.context is None  # nothing the bot could read as an amount
    assert run.probe is None


@pytest.mark.integration
def test_us_and_canada_mccs_out_of_the_shares_in_the_block_rates(
    runs: dict[str, Run], seed: dict[str, Any]
) -> None:
    context = runs["verify_hotel"].context
    assert context is not None
    assert set(context["mccs"]) == {"310", "311", "312", "313", "316", "302", "234", "235"}
    assert context["events"] == 66 + 41 + 133 + 57 + 29 + 12
    by_mode = {mode["mode"]: mode for mode in context["modes"]}
    assert by_mode["standard"]["block_rate"] == _expected(seed, "verify_hotel").block_rates["standard"]
    assert context["blocking_events"] == 400 + 260 + 180 + 66 + 41 + 133 + 57 + 75 + 60 + 29 + 12


@pytest.mark.integration
def test_child_account_events_count_and_full_blocking_is_nan(runs: dict[str, Run]) -> None:
    context = runs["verify_delta"].context
    assert context is not None
    assert context["child_account_sids"] == [_sid("d02")]
    by_mode = {mode["mode"]: mode for mode in context["modes"]}
    assert by_mode["max"]["block_rate"] == 1.0
    assert by_mode["max"]["fraud_cost"] > 0
    assert by_mode["max"]["shown"] == "$nan"
    assert by_mode["max"]["credit"] is None


@pytest.mark.integration
def test_negative_mode_credit_is_kept(runs: dict[str, Run]) -> None:
    context = runs["verify_acme"].context
    assert context is not None
    by_mode = {mode["mode"]: Decimal(mode["credit"]) for mode in context["modes"]}
    assert by_mode["basic"] < 0
    assert Decimal(context["credit_amount"]) == sum(by_mode.values())


@pytest.mark.integration
def test_no_rows_for_the_period_is_a_clear_error(runs: dict[str, Run]) -> None:
    import papermill

    run = runs["verify_echo"]
    assert isinstance(run.error, papermill.PapermillExecutionError)
    assert run.error.ename == "ValueError"
    assert "No Verify spend rows for " + REQUESTS["verify_echo"] in run.error.evalue
    assert "check the Looker filters" in run.error.evalue
    assert run.context is None
    assert run.probe is None


@pytest.mark.integration
def test_fraud_spend_is_what_the_looker_sql_returns(runs: dict[str, Run], warehouse_file: Path) -> None:
    import duckdb

    with duckdb.connect(str(warehouse_file), read_only=True) as conn:
        for name in COMPUTED:
            rows = conn.execute((SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")).fetchall()
            context = runs[name].context
            assert context is not None
            assert Decimal(context["fraud_spend"]) == sum(row[4] for row in rows)


@pytest.mark.integration
def test_credentials_never_reach_the_executed_notebook(runs: dict[str, Run]) -> None:
    assert len(runs) == len(REQUESTS)
    for run in runs.values():
        text = run.path.read_text(encoding="utf-8")
        assert "credit_amount" in text  # the file is the executed notebook, not an empty stub
        assert FAKE_PASSWORD not in text
        assert FAKE_EXTRA_SECRET not in text


@pytest.mark.integration
def test_identical_credits_through_duckdb_trino_and_presto(
    duckdb_execution: Execution,
    server_executions: dict[str, tuple[dict[str, Run], dict[str, float], list[Any]]],
) -> None:
    """Every sample, answers and errors alike, is the same whichever warehouse path and client ran it."""
    duck_runs, duck_seconds = duckdb_execution
    timings = {"duckdb": duck_seconds}
    for dialect, (executed, seconds, received) in server_executions.items():
        timings[dialect] = seconds
        prefix = "X-Trino-" if dialect == "trino" else "X-Presto-"
        statements = [r for r in received if r.method == "POST"]
        # The notebook really went through this server and client: every query carried its headers.
        assert len(statements) >= 7 * len(COMPUTED)
        assert all(r.headers.get(f"{prefix}User") == SERVER_USER for r in statements)
        assert all(r.headers.get(f"{prefix}Session") == "query_max_run_time=10m" for r in statements)
        assert any(r.path.startswith("/v1/statement/executing/") for r in received)
        for name in REQUESTS:
            ours, theirs = duck_runs[name], executed[name]
            assert theirs.context == ours.context, (dialect, name)
            assert theirs.probe == ours.probe, (dialect, name)
            assert (type(theirs.error), getattr(theirs.error, "ename", None)) == (
                type(ours.error),
                getattr(ours.error, "ename", None),
            ), (dialect, name)
            if ours.error is not None:
                assert theirs.error is not None
                assert theirs.error.evalue == ours.error.evalue  # type: ignore[attr-defined]
    for name in COMPUTED:
        assert duck_runs[name].context is not None
    for path, seconds in timings.items():
        total = sum(seconds.values())
        print(f"\n{path}: verify_acme {seconds['verify_acme']:.2f} s; {len(seconds)} samples {total:.2f} s")


@pytest.mark.integration
@pytest.mark.parametrize("dialect", ["trino", "presto"])
def test_wrong_password_is_clear_and_leaks_nowhere(
    dialect: str, tmp_path: Path, warehouse_file: Path, tls: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from harness.warehouse_server import WarehouseServer

    caplog.set_level("DEBUG")
    with WarehouseServer(
        warehouse_file, dialect=dialect, users={SERVER_USER: FAKE_PASSWORD}, tls=tls
    ) as server:
        conn = server.connection(SERVER_USER, FAKE_WRONG_PASSWORD)
        executed, _ = execute_samples(tmp_path, conn, ["verify_acme"])
        received = list(server.received)
        failed_logins = server.failed_logins
    run = executed["verify_acme"]
    assert run.error is not None
    assert run.error.ename == "WarehouseConnectionError"  # type: ignore[attr-defined]
    engine = "Trino" if dialect == "trino" else "Presto"
    assert f"{engine} at https://127.0.0.1:" in run.error.evalue  # type: ignore[attr-defined]
    assert f"refused the login of user '{SERVER_USER}' (HTTP 401)" in run.error.evalue  # type: ignore[attr-defined]
    assert "Check the connection's login and password" in run.error.evalue  # type: ignore[attr-defined]
    assert failed_logins >= 1
    assert run.context is None
    notebook_text = run.path.read_text(encoding="utf-8")
    for secret in (FAKE_WRONG_PASSWORD, FAKE_PASSWORD):
        assert secret not in notebook_text  # outputs, tracebacks and the injected parameters
        assert secret not in str(run.error)
        assert secret not in caplog.text
        assert secret not in json.dumps([r.__dict__ for r in received])


def _ported_team_notebook(directory: Path) -> Path:
    """The team's notebook with README's edits (harness.team_notebook.port) and its parameters cell tagged,
    so papermill injects ``looker`` after it instead of above it."""
    import nbformat

    from harness.team_notebook import port

    ported = port(TEAM_NOTEBOOK, directory / "team_ported.ipynb")
    nb = nbformat.read(ported, as_version=4)
    [parameters] = [
        cell
        for cell in nb.cells
        if cell.cell_type == "code"
        and cell.source.lstrip().startswith("# Parameters")
        and re.search(r"^looker\s*=", cell.source, re.MULTILINE)
    ]
    parameters.metadata.setdefault("tags", []).append("parameters")
    nbformat.write(nb, ported)
    return ported


@pytest.mark.integration
def test_team_notebook_gives_the_same_numbers(
    tmp_path: Path, warehouse_file: Path, tls: Any, runs: dict[str, Run], seed: dict[str, Any]
) -> None:
    """The team's own notebook (ported, through the Presto sandbox: its SQL is Presto's) on every sample:
    its credit_amount parts sum to our credit_amount, or neither has a basis (it raises, every part is
    $nan, or the total is not above 0 — and ours raises)."""
    if not TEAM_NOTEBOOK.is_file():
        pytest.skip(f"the team's notebook is not here ({TEAM_NOTEBOOK}); set CREDIT_BOT_TEAM_NOTEBOOK")
    from harness.warehouse_server import WarehouseServer

    notebook = _ported_team_notebook(tmp_path)
    with WarehouseServer(
        warehouse_file, dialect="presto", users={SERVER_USER: FAKE_PASSWORD}, tls=tls
    ) as server:
        conn = server.connection(SERVER_USER, FAKE_PASSWORD)
        theirs, _ = execute_samples(tmp_path / "team", conn, notebook_path=notebook)
    for name in REQUESTS:
        ours, team = runs[name], theirs[name]
        if team.probe is None:
            # It raised: the team's ZeroDivisionError (no Fraud Guard events), or a query with no rows to
            # go on. A query the sandbox could not run is not the team's answer: fail saying so.
            assert team.error is not None, name
            ename, evalue = team.error.ename, team.error.evalue  # type: ignore[attr-defined]
            assert not ename.startswith(("Presto", "Database", "Warehouse")), (name, ename, evalue[:300])
            assert ours.error is not None, (
                name,
                f"the team's notebook raised {ename}, ours gave",
                ours.probe,
            )
            continue
        assert team.probe["type"] == "str", name
        number = team_number(team.probe["credit_amount"])
        expected = expected_credit(seed, REQUESTS[name], *PERIOD)
        assert expected is not None, name
        assert team.probe["credit_amount"] == expected.team_string, name
        if number is None or number <= 0:
            assert ours.error is not None, name
            assert ours.error.ename == "NoCreditBasis", name  # type: ignore[attr-defined]
        else:
            assert ours.probe is not None, (name, ours.error)
            assert Decimal(ours.probe["repr"]) == number, name


def test_sample_requests_run_october_2026() -> None:
    """The oracle assumes every sample SQL uses PERIOD and the account in REQUESTS."""
    for name, account_sid in REQUESTS.items():
        sql = (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
        assert f"(counters_by_billable_item.account_sid ) = '{account_sid}'" in sql
        assert "(TIMESTAMP '2026-10-01')" in sql
        assert "(TIMESTAMP '2026-11-01')" in sql
