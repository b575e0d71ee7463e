"""Against an earlier result: the change of each figure, marked when it got worse."""

from __future__ import annotations

from typing import Any


def delta(new: Any, old: Any, better: str) -> str:
    if not isinstance(new, int | float) or not isinstance(old, int | float) or not better:
        return "" if new == old or old is None or not better else " (was " + str(old) + ")"
    if old == 0:
        return "" if new == 0 else " (was 0)"
    change = (new - old) / abs(old) * 100
    if abs(change) < 0.5:
        return " (=)"
    mark = "" if (change < 0) == (better == "lower") else "!"
    return f" ({change:+.0f}%{mark})"
