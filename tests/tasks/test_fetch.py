"""credit_bot.tasks.fetch: the dry_run param; fetch_requests with an in-memory store against the sandbox."""

from __future__ import annotations

import pytest

from credit_bot.settings import SettingsError
from credit_bot.tasks.fetch import dry_run_choice


@pytest.mark.parametrize(
    ("value", "configured", "dry_run"),
    [
        pytest.param(None, True, True, id="as-configured-dry"),
        pytest.param(None, False, False, id="as-configured-live"),
        pytest.param("dry_run", False, True, id="form-dry-run"),
        pytest.param("live", True, False, id="form-live"),
        pytest.param(True, False, True, id="rest-true"),
        pytest.param(False, True, False, id="rest-false"),
    ],
)
def test_dry_run_param(value, configured: bool, dry_run: bool) -> None:
    assert dry_run_choice(value, configured) is dry_run


@pytest.mark.parametrize("value", ["yes", "", 1, 0])
def test_dry_run_param_rejects_anything_else(value) -> None:
    with pytest.raises(SettingsError, match="'dry_run' param"):
        dry_run_choice(value, True)


# ── load_settings and fetch_requests with an in-memory store ────────────────────────────────────
def test_settings_come_from_the_store_and_the_params(store, stack) -> None:
    from credit_bot.tasks.fetch import load_settings
    from tests.tasks.conftest import PARAMS

    run = load_settings({**PARAMS, "dry_run": "dry_run", "force": True}, store)
    assert run["channel"] == stack.settings()["channel"]
    assert run["dry_run"] is True
    assert run["force"] is True
    assert run["message_ts"] is None


def test_settings_missing_from_the_store_are_a_setup_error(stack) -> None:
    from credit_bot.errors import SetupError
    from credit_bot.store import MemoryStore
    from credit_bot.tasks.fetch import load_settings
    from tests.tasks.conftest import PARAMS

    with pytest.raises(SettingsError, match="'looker_hosts' is empty") as caught:
        load_settings(PARAMS, MemoryStore())
    assert isinstance(caught.value, SetupError)  # the DAG fails the run at once, without retries


def test_fetch_requests_skips_what_the_ledger_has_done(store, run, stack) -> None:
    from credit_bot import ledger
    from credit_bot.model import Outcome
    from credit_bot.tasks.fetch import fetch_requests
    from harness.testing.flows import CHANNEL, HOST

    done = stack.sandbox.add_message(CHANNEL, f"<{HOST}/looks/901>", user="U0REQUESTER")
    new = stack.sandbox.add_message(CHANNEL, f"credit please <{HOST}/looks/907>", user="U0REQUESTER")
    book = ledger.empty()
    finished = {"ts": done, "outcome": Outcome.ANSWERED, "dry_run": False, "amount": "1.00"}
    ledger.record(book, channel=CHANNEL, dry_run=False, outcomes=[finished], newest_ts=None)
    store.save_ledger(book)

    requests, window = fetch_requests(run, store)

    assert [r["ts"] for r in requests] == [new]
    assert requests[0]["reason"] == "new"
    assert requests[0]["attempt"] == 1
    assert window["newest_ts"] == new
    assert window["expired"] == []
    assert store.ledger() == book  # fetch_requests reads the ledger, never writes it


def test_fetch_requests_closes_an_open_request_whose_message_is_gone(store, run, stack) -> None:
    from credit_bot import ledger
    from credit_bot.model import Outcome
    from credit_bot.tasks.fetch import fetch_requests
    from harness.testing.flows import CHANNEL

    gone = stack.sandbox.add_message(CHANNEL, "credit please", user="U0REQUESTER")
    stack.sandbox.delete_message(CHANNEL, gone)
    book = ledger.empty()
    asked = {"ts": gone, "outcome": Outcome.LINK_REQUESTED, "dry_run": False, "reply_ts": gone}
    ledger.record(book, channel=CHANNEL, dry_run=False, outcomes=[asked], newest_ts=None)
    store.save_ledger(book)

    requests, window = fetch_requests(run, store)

    assert requests == []
    assert [(o["ts"], o["outcome"]) for o in window["expired"]] == [(gone, Outcome.DELETED)]
