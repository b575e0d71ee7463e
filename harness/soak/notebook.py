"""The soak's credit notebook: a test double whose amount comes from the SQL, and that fails on demand.

Like ``tests/data/fixed_result.ipynb`` it only assigns ``credit_amount`` (a float, unrounded, as the
team's notebook does) and ``fraud_spend`` from the ``-- SOAK RESULT=… SPEND=…`` marker of its
``looker`` SQL. Before that it claims one fault file from the soak's fault folder, if any (an atomic
rename, so two notebooks never take the same one): ``raise`` makes it fail, ``die`` kills its kernel.
"""

from __future__ import annotations

import json
from pathlib import Path

_CODE = """\
# Soak test double: credit_amount from the SQL's marker; a fault file, if one waits, fails it.
import ast
import os
import re
from decimal import Decimal
from pathlib import Path

for fault in sorted(Path({fault_dir!r}).glob("*.fault")):
    try:
        fault.rename(fault.with_suffix(".taken"))
    except FileNotFoundError:
        continue  # another notebook took it
    if fault.stem.endswith("-die"):
        os._exit(1)
    raise RuntimeError("warehouse query failed (soak fault)")

marker = re.search(r"SOAK RESULT=(\\S+) SPEND=(\\S+)", looker)
credit_amount = ast.literal_eval(marker.group(1))
fraud_spend = Decimal(marker.group(2))
"""


def write(path: Path, fault_dir: Path) -> Path:
    """Write the notebook to ``path``, reading faults from ``fault_dir``; returns ``path``."""
    cells = [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "soak-parameters",
            "metadata": {"tags": ["parameters"]},
            "outputs": [],
            "source": 'looker = ""',
        },
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "soak-result",
            "metadata": {},
            "outputs": [],
            "source": _CODE.format(fault_dir=str(fault_dir)),
        },
    ]
    notebook = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook, indent=1))
    return path
