"""``make bench`` (``python -m bench``): how fast and how frugal CreditBot is, against the sandbox.

Prints one table and writes the figures to ``bench-results/<UTC timestamp>-<git short sha>.json``
so that two commits can be compared (``--compare OLD.json``). Everything that matters is a count or
a ratio measured in the same run, because the machines this runs on are noisy:

* **parse**: median time Airflow's ``DagBag`` takes to load ``dags/credit_bot.py`` in a fresh
  interpreter that already imported Airflow (what a DAG processor has loaded), and the modules the
  parse added;
* **idle**: a run with nothing new — API calls by endpoint, task instances, mapped ones started;
* **backlog** of 1, 10 and 50 Verify requests: wall time, API calls per request, ledger size, and
  the overhead ratio = bot wall time ÷ running the same notebooks with papermill in one process;
* **latency**: message added → reply posted (measured), plus the wait for the next scheduled run
  (computed from the schedule, not measured): the figure without events;
* **latency with events** (``--executor local``): single messages posted one at a time to the
  settings channel, each answered by the asset-triggered run its Socket Mode event starts (the
  triggerer connected to the sandbox): post → reply, median and max (measured);
* **io-bound burst** (``--executor local``): requests whose notebooks wait on the warehouse, side by
  side; peak memory of every Airflow process and kernel as RSS and as PSS (pages shared by forked
  task processes counted once), and PSS per in-flight request;
* **team notebook** (``bench/team_notebook.py``; ``--team-notebook-only``): the team's real notebook,
  ported, through the Presto sandbox: papermill alone against a full ``dag.test()`` run on one
  request (the bot's overhead), its warehouse reads, and the memory one in-flight request adds.

The bench runs in its own temporary ``AIRFLOW_HOME`` (SQLite), never in ``.airflow/``. Airflow is
imported only after that home is set up, so nothing here imports it at module level.
"""

from __future__ import annotations
