"""The work behind each task of the ``credit_bot`` DAG, one module per step, in the order the DAG runs them.

- :mod:`.fetch` — fetch_requests: the settings for this run, the channel read, the requests picked
  (:mod:`.scopes`: the bot token's scopes, checked first).
- :mod:`.resolve` — resolve: Looker links → SQL → product → notebook jobs; run_notebook's arguments.
- :mod:`.decide` — post_results' decision from what resolve and the notebooks produced (no side effects).
- :mod:`.post` — post_results: one small function per :class:`~credit_bot.model.Action`
  (:mod:`.slack_side`: what it says in Slack, each message once).
- :mod:`.record` — record_ledger: the ledger, the posting markers dropped, old notebooks removed, the
  run's note.
- :mod:`.report` — report_failures: the run fails when a request's task failed or a DM reached nobody.

The DAG file only wires these together; each takes and returns small JSON values
(:mod:`credit_bot.model`) and the :class:`~credit_bot.store.Store` it reads and writes Variables through.
"""
