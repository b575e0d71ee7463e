"""Fixtures for full DAG runs: the parsed DAG and the sandbox stack (helpers: ``harness.testing.flows``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.local import LocalStack, load_dag, local_stack
from harness.testing.flows import CHANNEL, scenario


@pytest.fixture(scope="session")
def dag() -> Any:
    return load_dag()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    """The sandbox with the demo data plus test Looks, live mode, a fresh ledger."""
    from airflow.models.variable import Variable

    from credit_bot.ledger import LEDGER_VARIABLE

    Variable.delete(LEDGER_VARIABLE)
    with local_stack(tmp_path / "notebooks", scenario=scenario()) as running:
        yield running
    Variable.delete(LEDGER_VARIABLE)


@pytest.fixture
def post(stack: LocalStack) -> Callable[..., str]:
    def _post(text: str, user: str = "U0REQUESTER", **extra: Any) -> str:
        return stack.sandbox.add_message(CHANNEL, text, user=user, **extra)

    return _post
