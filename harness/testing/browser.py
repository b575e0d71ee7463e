"""Shared by the browser tests: numbered screenshots, and the timings printed at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TIMINGS: dict[str, float] = {}


class Screens:
    """Numbered full-page screenshots under test-artifacts/browser/, one per step."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.taken: list[Path] = []

    def take(self, page: Any, name: str) -> Path:
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path
