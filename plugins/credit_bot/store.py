"""Where CreditBot keeps state between tasks and runs — and the only code that touches Airflow Variables.

Five channels carry state. Each, with who writes it, who reads it and how long it lives:

1. **XCom** (shapes in :mod:`credit_bot.model`). Written by fetch_requests (the requests; keys ``run``
   and ``window``), resolve, post_results and record_ledger. Read by the tasks downstream of each.
   Lives as long as the DAG run.
2. **Executed notebooks** under ``<output_dir>/<run_id>/`` (local or object storage). Written by
   run_notebook (papermill). Read by post_results (``credit_amount``) and the UI's notebook view.
   Lives ``notebook_retention_days``; record_ledger removes older ones.
3. **Airflow Variables** (this module, listed below). The ledger is written by record_ledger only, the
   posting markers by post_results (and an approval run's post), approval decisions by the
   approval runs, the settings by people. Read by fetch_requests (ledger,
   settings), post_results (markers), the failure alerts (settings), the UI and ``make ledger``
   (ledger, settings). Ledger entries live ``ledger_retention_days``; markers until the ledger has
   their request's outcome.
4. **Slack message metadata** (``event_type`` and the request's ts on every reply and DM). Written
   by post_results. Read by post_results: a reply or DM already sent is found and not sent again.
   Lives as long as the message.
5. **Task states**. Written by Airflow. Read by report_failures: a request's task that failed fails
   the run once the ledger is written. Lives as long as the DAG run.

The Variables:

- ``credit_bot_settings`` (:data:`credit_bot.settings.SETTINGS_VARIABLE`): JSON, written by people.
- ``credit_bot_ledger`` (:data:`credit_bot.ledger.LEDGER_VARIABLE`): JSON (:class:`credit_bot.model.Ledger`),
  written only by record_ledger.
- ``credit_bot_posting__<channel>__<ts>__<kind>`` (:func:`post_marker`): one per message being posted about
  a request: ``posting`` just before ``chat.postMessage``, ``posted:<reply ts>`` right after (an escalation's
  holds ``posted:<error>``). record_ledger deletes them once the outcome is in the ledger. A marker found
  later means a try died in between: ``posted`` is trusted, ``posting`` sends the bot to read the thread
  before posting (the one case that costs a ``conversations.replies`` call, which Slack rate-limits hard).
- ``credit_bot_approval__<channel>__<ts>`` (:func:`decision_key`): JSON
  (:class:`credit_bot.model.ApprovalDecision`), written by a ``credit_bot_approval`` run's ``post`` task
  once an approver decided (or nobody did in time); record_ledger merges it into the ledger, then
  deletes it with the request's posting markers.

:class:`Store` is what the tasks take: :class:`VariableStore` in Airflow tasks, :class:`ServerVariables`
in the API server and the CLI (read-only), :class:`MemoryStore` in unit tests.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Collection
from typing import cast

from credit_bot import ledger
from credit_bot.model import ApprovalDecision, Ledger
from credit_bot.settings import SETTINGS_VARIABLE

POSTING = "posting"
POSTED = "posted:"
MARKER_PREFIX = "credit_bot_posting__"


DECISION_PREFIX = "credit_bot_approval__"


def post_marker(channel: str, ts: str, event_type: str) -> str:
    """The posting marker's Variable key of one kind of message about one request."""
    return f"{MARKER_PREFIX}{channel}__{ts}__{event_type}"


def decision_key(channel: str, ts: str) -> str:
    """The Variable a ``credit_bot_approval`` run writes its decision to; record_ledger drops it."""
    return f"{DECISION_PREFIX}{channel}__{ts}"


class Store(ABC):
    """Key → text, plus the typed reads and writes CreditBot makes on it."""

    @abstractmethod
    def get(self, key: str) -> str | None:
        """The text under ``key``, or ``None`` when it is not set."""

    @abstractmethod
    def set(self, key: str, value: str) -> None: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    def settings_text(self) -> str | None:
        return self.get(SETTINGS_VARIABLE)

    def ledger(self) -> Ledger:
        return ledger.loads(self.get(ledger.LEDGER_VARIABLE))

    def ledger_text(self) -> str | None:
        return self.get(ledger.LEDGER_VARIABLE)

    def save_ledger(self, book: Ledger) -> None:
        self.set(ledger.LEDGER_VARIABLE, ledger.dumps(book))

    def marker(self, key: str) -> str | None:
        return self.get(key)

    def mark_posting(self, key: str) -> None:
        self.set(key, POSTING)

    def mark_posted(self, key: str, what: str) -> None:
        """``what``: the reply's ts, or for an escalation its error (first 500 characters)."""
        self.set(key, POSTED + what)

    @staticmethod
    def posted(mark: str | None) -> str | None:
        """What a ``posted:`` marker holds, or ``None`` for no marker or one still ``posting``."""
        return mark.removeprefix(POSTED) if mark and mark.startswith(POSTED) else None

    def drop_markers(self, keys: Collection[str]) -> None:
        for key in sorted(keys):
            self.delete(key)

    def approval_decision(self, channel: str, ts: str) -> ApprovalDecision | None:
        """What the request's ``credit_bot_approval`` run decided, or ``None`` while it has not."""
        raw = self.get(decision_key(channel, ts))
        return cast(ApprovalDecision, json.loads(raw)) if raw else None

    def save_approval_decision(self, channel: str, ts: str, decided: ApprovalDecision) -> None:
        self.set(decision_key(channel, ts), json.dumps(decided))


class VariableStore(Store):
    """Airflow Variables through the Task SDK: what tasks and callbacks use."""

    def get(self, key: str) -> str | None:
        from airflow.sdk import Variable

        value = Variable.get(key, default=None)
        return None if value is None else str(value)

    def set(self, key: str, value: str) -> None:
        from airflow.sdk import Variable

        Variable.set(key, value)

    def delete(self, key: str) -> None:
        from airflow.sdk import Variable

        Variable.delete(key)


class ServerVariables(Store):
    """Variables read where no task runs (the API server's pages, ``make ledger``): read-only.

    Through the secrets backends and the metadata DB, as ``Variable.get`` reads them, but without its
    secret-masking pass: it escapes the whole value as a regex on every read, which was most of the
    requests page's time with a large ledger (0.5 s at 5,000 entries).
    """

    def get(self, key: str) -> str | None:
        from airflow.models.variable import Variable

        value = Variable.get_variable_from_secrets(key)
        return None if value is None else str(value)

    def set(self, key: str, value: str) -> None:
        raise PermissionError(f"{type(self).__name__} is read-only; only tasks write {key!r}")

    def delete(self, key: str) -> None:
        raise PermissionError(f"{type(self).__name__} is read-only; only tasks delete {key!r}")


class MemoryStore(Store):
    """A dict: the store of unit tests (``MemoryStore({"credit_bot_settings": "{…}"})``)."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values: dict[str, str] = dict(values or {})

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)
