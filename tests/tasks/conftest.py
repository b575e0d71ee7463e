"""The four core tasks called as functions: the sandbox for Slack and Looker, an in-memory store for state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from credit_bot.model import RequestDict, RunConfig
from credit_bot.settings import SETTINGS_VARIABLE
from credit_bot.store import MemoryStore
from credit_bot.tasks import fetch
from harness.local import LocalStack, local_stack
from harness.testing.flows import CHANNEL, scenario

PARAMS: dict[str, object] = {"channel": None, "message_ts": None, "dry_run": None, "force": False}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    """The sandbox (demo data plus test Looks) with the bot's connections pointing at it, live mode."""
    with local_stack(tmp_path / "notebooks", scenario=scenario()) as running:
        yield running


@pytest.fixture
def store(stack: LocalStack) -> MemoryStore:
    """Variables in a dict: the settings of ``stack``, no ledger yet."""
    return MemoryStore({SETTINGS_VARIABLE: json.dumps(stack.settings())})


@pytest.fixture
def run(store: MemoryStore) -> RunConfig:
    return fetch.load_settings(PARAMS, store)


def request(stack: LocalStack, text: str, attempt: int = 1) -> RequestDict:
    """A request for a message just posted in the sandbox's channel."""
    from credit_bot.model import RequestReason

    ts = stack.sandbox.add_message(CHANNEL, text, user="U0REQUESTER")
    return {
        "channel": CHANNEL,
        "ts": ts,
        "user": "U0REQUESTER",
        "text": text,
        "attempt": attempt,
        "reason": RequestReason.NEW,
        "forced": False,
    }
