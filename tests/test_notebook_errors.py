"""Tests for credit_bot.notebooks.failures: a failed cell's error, in words, transient or not."""

from __future__ import annotations

import prestodb.exceptions
import pytest
import requests
import trino.exceptions

from credit_bot.notebooks.failures import explain, query_name

# The team's cell 17 (cost query), as far as naming its query goes.
COST_CELL = (
    "true_cost = f'''\nSELECT 1\n'''\n\ntrue_cost_df = get_presto_data(true_cost, presto_connection=conn)\n"
)


def _query_error(cls: type[Exception], name: str, kind: str, message: str) -> tuple[str, str]:
    """``ename``/``evalue`` exactly as the kernel records a client's query error."""
    error = cls({"message": message, "errorCode": 1, "errorName": name, "errorType": kind}, "20261204_0001")
    return type(error).__name__, str(error)


@pytest.mark.parametrize(
    ("error", "transient", "words"),
    [
        pytest.param(
            _query_error(
                prestodb.exceptions.PrestoExternalError,
                "EXCEEDED_GLOBAL_MEMORY_LIMIT",
                "INSUFFICIENT_RESOURCES",
                "Query exhausted resources at this scale factor",
            ),
            True,
            "the warehouse ran out of resources running the query `true_cost` (Presto "
            "EXCEEDED_GLOBAL_MEMORY_LIMIT: Query exhausted resources at this scale factor); "
            "usually temporary",
            id="presto-exhausted-resources",
        ),
        pytest.param(
            _query_error(
                trino.exceptions.TrinoUserError,
                "TABLE_NOT_FOUND",
                "USER_ERROR",
                "line 3:6: Table 'hive.public.nope' does not exist",
            ),
            False,
            "the warehouse refused the query `true_cost` (Trino TABLE_NOT_FOUND: line 3:6: Table "
            "'hive.public.nope' does not exist); running it again gives the same error",
            id="trino-table-not-found",
        ),
        pytest.param(
            _query_error(
                prestodb.exceptions.PrestoUserError, "SYNTAX_ERROR", "USER_ERROR", "line 1:1: mismatched"
            ),
            False,
            "the warehouse refused the query `true_cost` (Presto SYNTAX_ERROR",
            id="presto-syntax-error",
        ),
        pytest.param(
            _query_error(
                prestodb.exceptions.PrestoInternalError, "SERVER_STARTING_UP", "INTERNAL_ERROR", "starting"
            ),
            True,
            "the warehouse failed running the query `true_cost` (Presto INTERNAL_ERROR SERVER_STARTING_UP",
            id="presto-starting-up",
        ),
        pytest.param(
            (
                "ConnectTimeout",
                str(
                    requests.exceptions.ConnectTimeout(
                        "HTTPSConnectionPool(host='presto.example.com', port=8443): Max retries exceeded "
                        "with url: /v1/statement (Caused by ConnectTimeoutError(<urllib3.connection."
                        "HTTPSConnection object>, 'Connection to presto.example.com timed out.'))"
                    )
                ),
            ),
            True,
            "the warehouse coordinator (presto.example.com:8443) did not answer in time (connect timeout) "
            "while running the query `true_cost` (ConnectTimeout); usually temporary",
            id="coordinator-connect-timeout",
        ),
    ],
)
def test_warehouse_failures_in_words(error: tuple[str, str], transient: bool, words: str) -> None:
    explanation = explain(*error, COST_CELL)
    assert explanation.warehouse
    assert explanation.transient is transient
    assert explanation.text.startswith(words)


def test_the_notebooks_own_errors_stay_as_they_are() -> None:
    explanation = explain("ZeroDivisionError", "division by zero\nmore", "pct = a / b")
    assert explanation.text == "ZeroDivisionError: division by zero"
    assert not explanation.warehouse
    assert explanation.transient


@pytest.mark.parametrize(
    ("source", "name"),
    [
        pytest.param(COST_CELL, "true_cost", id="team-helper"),
        pytest.param("cursor.execute(fg_settings)\nrows = cursor.fetchall()", "fg_settings", id="cursor"),
        pytest.param("df = pd.read_sql(mrr, conn)", "mrr", id="read-sql"),
        pytest.param("a = get_presto_data(x, conn)\nb = get_presto_data(y, conn)", None, id="two-queries"),
        pytest.param("total = 1 / 0", None, id="no-query"),
    ],
)
def test_query_name(source: str, name: str | None) -> None:
    assert query_name(source) == name
