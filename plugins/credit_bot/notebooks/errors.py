"""What can go wrong with a product notebook, each class in the branch of :mod:`credit_bot.errors`
that says what happens next.

- :class:`NotebookDidNotFinish` (transient): the kernel died, a cell raised, the warehouse was out of
  resources or did not answer, the executed notebook is missing. Running it again may give a credit.
- :class:`WarehouseRefused`, :class:`CreditAmountMissing`, :class:`NotebookRejected` (rejected
  request): the notebook ran, or the warehouse refused its SQL; the same run gives the same answer,
  so the operators are told once. :class:`credit_bot.money.InvalidAmount` is in this branch too.
- :class:`ParametersCellMissing` (setup): the notebook must be changed before CreditBot can run it.

:class:`NotebookResultError` is their common base: what :func:`~credit_bot.notebooks.read_result`
raises when an executed notebook gives no usable ``credit_amount``.
"""

from __future__ import annotations

from credit_bot.errors import CreditBotError, RejectedRequest, SetupError, TransientError


class NotebookResultError(CreditBotError):
    """The executed notebook gives no usable ``credit_amount`` (a subclass says why, and what next)."""


class NotebookDidNotFinish(NotebookResultError, TransientError):
    """The notebook stopped before CreditBot's read-out cell; running it again may give a credit."""


class WarehouseRefused(NotebookResultError, RejectedRequest):
    """The warehouse refused the notebook's SQL (``USER_ERROR``): the same SQL fails the same way."""


class NotebookRejected(NotebookResultError, RejectedRequest):
    """The executed notebook must not be used (e.g. it leaked a secret); retrying will not help."""


class CreditAmountMissing(NotebookResultError, RejectedRequest):
    """The notebook ran to the end without setting ``credit_amount``: running it again will not help."""


class ParametersCellMissing(SetupError):
    """No cell to inject the parameters after: the notebook would overwrite them with its own."""
