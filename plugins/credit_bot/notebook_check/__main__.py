"""``python -m credit_bot.notebook_check PATH``: see :mod:`credit_bot.notebook_check.cli`."""

from __future__ import annotations

import sys

from credit_bot.notebook_check.cli import main

sys.exit(main())
