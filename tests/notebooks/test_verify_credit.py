"""Tests for the reference Verify notebook (include/notebooks/verify_credit.ipynb).

The expected credits are computed here independently of the notebook: the team's method in plain Python
over the rows of include/warehouse/seed.json (not the DuckDB file), with exact fractions. The notebook is
then executed with papermill against a warehouse built from the same seed in tmp_path, and its structured
output (``application/vnd.credit-bot.context+json``) must match to the cent.

Notebook runs are slow (a kernel start each), so every sample request is executed once per module and the
tests read the executed notebooks.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "include" / "notebooks" / "verify_credit.ipynb"
SEED = REPO / "include" / "warehouse" / "seed.json"
SQL_DIR = REPO / "include" / "sandbox" / "sql"
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
}
COMPUTED = ["verify_acme", "verify_bolt", "verify_cobalt", "verify_delta", "verify_hotel"]
# The team's filters (their notebook and their warehouse's spelling).
VERIFY_PRODUCT_ID = "Verify"
EXCLUDED_MCCS = {"310", "311", "312", "313", "302"}
EXPECTED_BLOCK_RATE = {"basic": Fraction(8, 10), "standard": Fraction(9, 10), "max": Fraction(1)}


# --- the oracle: the brief's method over the seed rows -------------------------------------------------


class NoEvents(Exception):
    """The oracle's "no Fraud Guard events at all": the brief says the notebook must raise, not return 0."""


@dataclass(frozen=True)
class Expected:
    fraud_spend: Decimal
    countries: list[str]
    account_sids: list[str]
    mode_credits: dict[str, Fraction]
    credit: Decimal
    events: int
    scanned_events: int


def _d(text: str) -> date:
    return date.fromisoformat(text)


def expected_credit(
    seed: dict[str, Any], account_sid: str, start: date, end: date, product_id: str = VERIFY_PRODUCT_ID
) -> Expected | None:
    """The team's method, straight from the brief, over seed rows. None when the Looker SQL has no rows;
    NoEvents when there is spend but no Fraud Guard event to base a credit on."""
    items = {item["sid"]: item for item in seed["billable_items"]}
    spend_rows = [
        row
        for row in seed["counters_by_billable_item"]
        if row["account_sid"] == account_sid
        and start <= _d(row["date"]) < end
        and "Authy" in items[row["billable_item_sid"]]["friendly_name"]
    ]
    if not spend_rows:
        return None
    fraud_spend = sum((Decimal(row["total"]) for row in spend_rows), Decimal(0))
    countries = sorted({items[row["billable_item_sid"]]["iso_country_code"] for row in spend_rows})
    accounts = [
        account_sid,
        *sorted(a["sid"] for a in seed["rawpii_accounts"] if a["parent_account_sid"] == account_sid),
    ]
    mccs = {
        m["mcc"]
        for m in seed["mcc_country"]
        if m["two_letter_country_code"] in countries and m["mcc"] not in EXCLUDED_MCCS
    }

    total = scanned = 0
    per_mode = {mode: [0, 0] for mode in EXPECTED_BLOCK_RATE}  # mode -> [scanned, blocked]
    for entry in seed["dsg_fds_raw_events"]:
        in_scope = (
            entry["account_sid"] in accounts
            and start <= _d(entry["data_load_date"]) < end
            and entry["product_id"] == product_id
            and entry["channel"] == "sms"
            and entry["mcc"] in mccs
            and entry["reason"] != "duplicate_request_skipped"
        )
        if not in_scope:
            continue
        total += entry["count"]
        if entry["fraud_guard_enabled"] and entry["reason"] not in (
            "pass_country_level_config_request",
            "risk_check_disabled",
        ):
            scanned += entry["count"]
            per_mode[entry["protection_mode"]][0] += entry["count"]
            per_mode[entry["protection_mode"]][1] += entry["count"] if entry["block"] else 0

    if total == 0:
        raise NoEvents(account_sid)
    scanned_share = Fraction(scanned, total)
    mode_credits: dict[str, Fraction] = {}
    for mode, (mode_scanned, mode_blocked) in per_mode.items():
        if mode_scanned == 0 or mode_blocked == mode_scanned:
            mode_credits[mode] = Fraction(0)
            continue
        share = Fraction(mode_scanned, scanned)
        b = Fraction(mode_blocked, mode_scanned)
        fraud_cost = share * Fraction(fraud_spend) * scanned_share
        implied = fraud_cost / (1 - b)
        mode_credits[mode] = implied * EXPECTED_BLOCK_RATE[mode] - (implied - fraud_cost)
    exact = sum(mode_credits.values(), Fraction(0))
    with localcontext() as ctx:
        ctx.prec = 60
        credit = (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
    return Expected(fraud_spend, countries, accounts, mode_credits, credit, total, scanned)


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
    out_dir: Path, conn: dict[str, Any], names: list[str] | None = None
) -> tuple[dict[str, Run], dict[str, float]]:
    """Execute the probed notebook once per sample request against ``conn``; also each run's seconds."""
    import nbformat
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    # A copy of the notebook with one extra cell that reports the `credit_amount` variable itself.
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            f'display({{"{PROBE_MIME}": {{"credit_amount": credit_amount, '
            '"type": type(credit_amount).__name__, "repr": repr(credit_amount)}}, raw=True)'
        )
    )
    probed = out_dir / "verify_credit_probed.ipynb"
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


def test_oracle_covers_the_edge_cases(seed: dict[str, Any]) -> None:
    """The sample data really makes the cases the notebook tests rely on."""
    acme = expected_credit(seed, REQUESTS["verify_acme"], *PERIOD)
    bolt = expected_credit(seed, REQUESTS["verify_bolt"], *PERIOD)
    cobalt = expected_credit(seed, REQUESTS["verify_cobalt"], *PERIOD)
    delta = expected_credit(seed, REQUESTS["verify_delta"], *PERIOD)
    assert acme
    assert bolt
    assert cobalt
    assert delta
    assert all(credit != 0 for credit in acme.mode_credits.values())
    assert acme.mode_credits["basic"] < 0 < acme.credit  # a negative mode credit is kept
    assert [mode for mode, credit in bolt.mode_credits.items() if credit] == ["standard"]
    assert cobalt.credit == 0
    assert cobalt.fraud_spend > 0
    assert cobalt.events > 0 == cobalt.scanned_events  # events, none scanned: 0 by the brief
    assert len(delta.account_sids) == 2
    assert expected_credit(seed, REQUESTS["verify_echo"], *PERIOD) is None
    with pytest.raises(NoEvents):
        expected_credit(seed, REQUESTS["verify_golf"], *PERIOD)
    # The lowercase decoys are real traffic under the old filter: spelling 'verify' would change the answers.
    assert expected_credit(seed, REQUESTS["verify_golf"], *PERIOD, product_id="verify") is not None
    lowercase_acme = expected_credit(seed, REQUESTS["verify_acme"], *PERIOD, product_id="verify")
    assert lowercase_acme is not None
    assert lowercase_acme.credit != acme.credit


def test_oracle_leaves_out_the_us_and_canada_mccs(seed: dict[str, Any]) -> None:
    hotel = expected_credit(seed, REQUESTS["verify_hotel"], *PERIOD)
    assert hotel is not None
    assert hotel.countries == ["CA", "GB", "US"]
    # Counted: 316 (US, not on the team's list) and GB's 234/235; not counted: 310-313 and 302.
    assert hotel.events == 66 + 41 + 133 + 57 + 29 + 12
    assert hotel.credit > 0


# --- executed notebooks (slow) -------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("name", COMPUTED)
def test_credit_matches_the_method_to_the_cent(name: str, runs: dict[str, Run], seed: dict[str, Any]) -> None:
    run = runs[name]
    assert run.error is None, f"{name} failed: {run.error}"
    expected = expected_credit(seed, REQUESTS[name], *PERIOD)
    assert expected is not None
    assert run.context is not None
    assert Decimal(run.context["credit_amount"]) == expected.credit
    assert Decimal(run.context["fraud_spend"]) == expected.fraud_spend
    assert run.context["countries"] == expected.countries
    assert run.context["account_sid"] == REQUESTS[name]
    assert run.context["account_sids"] == expected.account_sids
    assert (run.context["period_start"], run.context["period_end"]) == (
        "2026-10-01 00:00:00",
        "2026-11-01 00:00:00",
    )
    # Per-mode credits are shown rounded to 4 places; each must agree with the exact value.
    for mode in run.context["modes"]:
        assert abs(Decimal(mode["credit"]) - Decimal(float(expected.mode_credits[mode["mode"]]))) < Decimal(
            "0.0001"
        )
    # The context is what the bot stores next to the reply: it must survive JSON.
    assert json.loads(json.dumps(run.context)) == run.context


@pytest.mark.integration
@pytest.mark.parametrize("name", COMPUTED)
def test_credit_amount_variable_is_a_plain_cent_exact_number(
    name: str, runs: dict[str, Run], seed: dict[str, Any]
) -> None:
    probe = runs[name].probe
    expected = expected_credit(seed, REQUESTS[name], *PERIOD)
    assert probe is not None
    assert expected is not None
    assert probe["type"] == "float"
    # float -> shortest repr -> Decimal gives back the cents exactly.
    assert Decimal(probe["repr"]) == expected.credit
    assert probe["credit_amount"] == float(expected.credit)


@pytest.mark.integration
def test_one_mode_only(runs: dict[str, Run]) -> None:
    context = runs["verify_bolt"].context
    assert context is not None
    by_mode = {mode["mode"]: mode for mode in context["modes"]}
    assert Decimal(by_mode["standard"]["share"]) == 1
    assert by_mode["basic"]["block_rate"] is None
    assert Decimal(by_mode["basic"]["credit"]) == 0
    assert by_mode["max"]["block_rate"] is None
    assert Decimal(by_mode["max"]["credit"]) == 0


@pytest.mark.integration
def test_no_scanned_traffic_gives_zero_not_nan(runs: dict[str, Run]) -> None:
    run = runs["verify_cobalt"]
    assert run.context is not None
    assert run.probe is not None
    assert run.context["events"] > 0
    assert run.context["scanned_events"] == 0
    assert run.context["credit_amount"] == "0.00"
    assert run.probe["credit_amount"] == 0.0
    assert "nan" not in json.dumps(run.context).lower()


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
def test_us_and_canada_mccs_are_left_out(runs: dict[str, Run]) -> None:
    context = runs["verify_hotel"].context
    assert context is not None
    assert context["mccs"] == ["234", "235", "316"]
    assert context["events"] == 66 + 41 + 133 + 57 + 29 + 12


@pytest.mark.integration
def test_child_account_events_count_and_full_blocking_contributes_zero(runs: dict[str, Run]) -> None:
    context = runs["verify_delta"].context
    assert context is not None
    assert context["account_sids"] == [REQUESTS["verify_delta"], _sid("d02")]
    by_mode = {mode["mode"]: mode for mode in context["modes"]}
    assert Decimal(by_mode["max"]["block_rate"]) == 1
    assert Decimal(by_mode["max"]["fraud_cost"]) > 0
    assert Decimal(by_mode["max"]["credit"]) == 0


@pytest.mark.integration
def test_negative_mode_credit_is_kept(runs: dict[str, Run]) -> None:
    context = runs["verify_acme"].context
    assert context is not None
    by_mode = {mode["mode"]: Decimal(mode["credit"]) for mode in context["modes"]}
    assert by_mode["basic"] < 0
    assert abs(Decimal(context["credit_amount"]) - sum(by_mode.values())) <= Decimal("0.01")


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
def test_the_looker_sql_runs_unchanged(runs: dict[str, Run], warehouse_file: Path) -> None:
    """The fraud spend is exactly what the Looker SQL itself returns."""
    import duckdb

    with duckdb.connect(str(warehouse_file), read_only=True) as conn:
        for name in COMPUTED:
            rows = conn.execute((SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")).fetchall()
            context = runs[name].context
            assert context is not None
            assert Decimal(context["fraud_spend"]) == sum(total for _, total in rows)


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
        assert len(statements) >= 5 * len(COMPUTED)
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


def test_sample_requests_run_october_2026() -> None:
    """The oracle assumes every sample SQL uses PERIOD and the account in REQUESTS."""
    for name, account_sid in REQUESTS.items():
        sql = (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
        assert f"'{account_sid}'" in sql
        assert "TIMESTAMP '2026-10-01 00:00:00'" in sql
        assert "TIMESTAMP '2026-11-01 00:00:00'" in sql
