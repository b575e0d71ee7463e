"""The slow warehouse sandbox: real trino / prestodb clients wait ``query_seconds`` for a table read."""

from __future__ import annotations

import time

import pytest

from harness.local import SAMPLE_WAREHOUSE
from harness.warehouse_latency import SlowWarehouseServer

QUERY_S = 1.2


@pytest.fixture(scope="module")
def database():
    from harness.sample_warehouse import build

    if not SAMPLE_WAREHOUSE.exists():
        build(SAMPLE_WAREHOUSE)
    return SAMPLE_WAREHOUSE


def _cursor(dialect: str, server: SlowWarehouseServer):
    if dialect == "trino":
        import trino.dbapi as dbapi
    else:
        import prestodb.dbapi as dbapi
    return dbapi.connect(
        host="127.0.0.1", port=server.port, user="bench", catalog="hive", schema="public", http_scheme="http"
    ).cursor()


@pytest.mark.parametrize("dialect", [pytest.param("trino", id="trino"), pytest.param("presto", id="presto")])
def test_a_table_read_takes_query_seconds_and_a_probe_does_not(database, dialect: str) -> None:
    with SlowWarehouseServer(database, query_seconds=QUERY_S, poll_wait_s=0.3, dialect=dialect) as server:
        cursor = _cursor(dialect, server)
        started = time.monotonic()
        cursor.execute("SELECT 1")
        assert cursor.fetchall() == [[1]]
        probe_s = time.monotonic() - started

        started = time.monotonic()
        cursor.execute("SELECT count(*) FROM public.mcc_country")
        [[count]] = cursor.fetchall()
        read_s = time.monotonic() - started
        polls = [r for r in server.received if "/executing/" in r.path]
    assert count > 0  # the same answer as without the delay
    assert probe_s < QUERY_S / 2
    assert QUERY_S <= read_s < QUERY_S + 2.0
    # Polls are held (poll_wait_s), not answered at once: a handful, not a busy loop.
    assert 3 <= len(polls) <= 3 * QUERY_S / 0.3


def test_a_failing_read_fails_at_once(database) -> None:
    with SlowWarehouseServer(database, query_seconds=30, dialect="trino") as server:
        cursor = _cursor("trino", server)
        started = time.monotonic()
        from trino.exceptions import TrinoUserError

        with pytest.raises(TrinoUserError, match=r"TABLE_NOT_FOUND|no_such_table"):
            cursor.execute("SELECT * FROM public.no_such_table")
    assert time.monotonic() - started < 5


def test_rejects_a_negative_delay(database) -> None:
    with pytest.raises(ValueError, match="query_seconds"):
        SlowWarehouseServer(database, query_seconds=-1)
