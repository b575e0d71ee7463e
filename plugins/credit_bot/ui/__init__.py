"""CreditBot in the Airflow UI: the requests page and the executed-notebook view (an Airflow plugin).

Kept light: the DAG imports :mod:`credit_bot.ui.links` (the operator extra link), so nothing here
imports FastAPI or nbconvert at module level; :mod:`credit_bot.ui.app` does, in the API server.
"""
