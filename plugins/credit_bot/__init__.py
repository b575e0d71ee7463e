"""CreditBot: the library the credit_bot DAG calls (Slack, Looker, notebooks, replies, ledger)."""
