"""``make bench``: CreditBot's benchmark against the sandbox (see ``bench.credit_bot_bench``)."""
