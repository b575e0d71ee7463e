"""CreditBot's errors: one root, three branches that say what happens next.

Behaviour follows the class, never the message text:

- :class:`SetupError` — a setting, connection, scope or notebook to fix. The run fails at once, without
  Airflow's retries (retrying cannot fix a setting), and the failure alert names it.
- :class:`TransientError` — the world was briefly unwell (Looker or Slack 5xx, a timeout, the warehouse
  out of resources, a kernel that died). Airflow retries the task; later runs retry the request up to
  ``max_attempts``; then the operators hear it gave up.
- :class:`RejectedRequest` — this request cannot be answered as it is (an amount that must not be
  posted, a link that gives no query, a Look that does not exist). Escalated to the operators once,
  never retried.

And one that is not a problem of its own: :class:`AlreadyTold`, the cause of a red run whose every
problem the requests' own DMs already told (``report_failures``); its failure alert stays silent.

The errors of the services CreditBot talks to (Slack, Looker, the warehouse, papermill) are translated
into these where they are caught, each by one table in the module that talks to that service.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class CreditBotError(Exception):
    """Root of every error CreditBot raises on purpose."""


class SetupError(CreditBotError):
    """Something in the deployment must be fixed by a person; the run fails at once, no retry."""


class TransientError(CreditBotError):
    """Worth trying again: Airflow retries the task, later runs the request, then it is escalated."""


class RejectedRequest(CreditBotError):
    """This request cannot be answered as it is: the operators are told once, nothing is retried."""


class AirflowApiError(TransientError):
    """Airflow's REST API answered with an error status (``status``), or could not be reached (``status`` 0).

    Transient: the task that called it (a click being handled, a run note) is retried.
    """

    def __init__(self, method: str, path: str, status: int, detail: str) -> None:
        super().__init__(f"{method} {path} -> {status or 'unreachable'}: {detail[:300]}")
        self.status = status


class AlreadyTold(CreditBotError):
    """A run fails only for problems the requests' own DMs told the operators: no alert.

    ``report_failures`` raises Airflow's ``AirflowFailException`` (red, no retries) *from* this, so
    the run stays red while ``alerts.on_task_failure`` knows by the type, not the text, to stay silent.
    """


@contextmanager
def setup_fails_the_task() -> Iterator[None]:
    """Inside a task: a :class:`SetupError` fails it at once, without Airflow's retries.

    Raised again as Airflow's ``AirflowFailException`` from the setup error, so the task log shows
    the setup error's class and message, and the failure alert names it (``alerts``).
    """
    try:
        yield
    except SetupError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{exc} ({type(exc).__name__}: retrying cannot fix it)") from exc
