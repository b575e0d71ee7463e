"""Where executed notebooks are kept, found again and, after ``notebook_retention_days``, removed.

``output_dir`` is a local folder or an fsspec URL (``s3://bucket/prefix``, ``gs://…``). papermill
writes each executed notebook there (its own S3 handler for ``s3://``); everything else reads and
removes them through fsspec here: :func:`read_text` for the bot's result reading and secret scrub,
:class:`NotebookStore` for the UI and the retention step. Only names :func:`output_path` makes are
ever opened or removed by the store: a run folder (the run id, made filesystem-safe) holding
``<channel>-<ts>-<index>.ipynb`` files.

**Object storage is configured as AWS configures it, not in CreditBot's settings.** papermill's S3
handler (boto3) and s3fs (aiobotocore) both read the standard AWS chain of the process — an IAM role
(instance profile, EKS service account), ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE`` — and, for an S3-compatible store (MinIO, Ceph, moto in the tests),
``AWS_ENDPOINT_URL_S3``. Give the workers (they write, read and remove) and the API server (it shows
them) the same; no credential ever appears in the settings Variable or in a notebook. The tests run
the whole path against moto's S3 server that way (``tests/test_notebook_store_s3.py``).

Listings are never cached (``use_listings_cache=False``): s3fs otherwise keeps a folder's listing
for the life of the process, and a notebook written after the UI listed its run folder would be
"not found" in that API server until it restarted.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

log = logging.getLogger(__name__)

# A run id made filesystem-safe (output_path); never a dot folder such as .instrumented.
RUN_DIR = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,249}$")
NOTEBOOK_NAME = re.compile(
    r"^(?P<channel>[CGD][A-Z0-9]{2,})-(?P<ts>\d{10}\.\d{6})-(?P<index>\d{1,4})\.ipynb$"
)
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024  # a page never loads more than this into the API server


def output_path(output_dir: str, run_id: str, channel: str, ts: str, index: int) -> str:
    """Where the executed notebook for one link of one request is kept."""
    safe_run = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    return f"{output_dir.rstrip('/')}/{safe_run}/{channel}-{ts}-{index}.ipynb"


def filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of a path or URL and the path within it, listings never cached."""
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(url, use_listings_cache=False)
    return fs, str(path)


def is_local(url: str) -> bool:
    """Whether ``url`` is a path on this machine (no scheme, or ``file://``)."""
    return "://" not in url or url.startswith("file://")


def make_parent(path: str) -> None:
    """The folder ``path`` goes in, for a local path (object stores have no folders to make)."""
    if is_local(path):
        Path(path.removeprefix("file://")).parent.mkdir(parents=True, exist_ok=True)


def read_text(path: str) -> str:
    """The text of a local file or of the object at a URL; :class:`FileNotFoundError` when absent."""
    fs, inner = filesystem(path)
    return bytes(fs.cat_file(inner)).decode("utf-8")


def write_text(path: str, text: str) -> None:
    """Replace the file or object at ``path`` with ``text``."""
    fs, inner = filesystem(path)
    fs.pipe_file(inner, text.encode("utf-8"))


class NotebookNotFound(LookupError):
    """No executed notebook of CreditBot's at that address (never ours, removed, or not a plain file)."""


@dataclass(frozen=True)
class NotebookRef:
    """The address of one executed notebook: its run folder and its file name."""

    run_dir: str
    name: str

    @classmethod
    def parse(cls, run_dir: str, name: str) -> NotebookRef:
        """A reference from a URL's parts, or :class:`NotebookNotFound` for anything not ours."""
        if not RUN_DIR.match(run_dir) or not NOTEBOOK_NAME.match(name):
            raise NotebookNotFound(f"{run_dir}/{name} is not an executed notebook's name")
        return cls(run_dir, name)

    @classmethod
    def from_path(cls, output_dir: str, path: str) -> NotebookRef | None:
        """The reference of a path :func:`output_path` made under ``output_dir``, else ``None``."""
        prefix = output_dir.rstrip("/") + "/"
        if not path.startswith(prefix):
            return None
        parts = path[len(prefix) :].split("/")
        if len(parts) != 2:
            return None
        try:
            return cls.parse(*parts)
        except NotebookNotFound:
            return None


class NotebookStore:
    """The executed notebooks under one ``output_dir``."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir = output_dir.rstrip("/")

    @property
    def _fs(self) -> tuple[AbstractFileSystem, str]:
        fs, root = filesystem(self.output_dir)
        return fs, root.rstrip("/")

    @property
    def is_local(self) -> bool:
        return is_local(self.output_dir)

    def path(self, ref: NotebookRef) -> str:
        return f"{self.output_dir}/{ref.run_dir}/{ref.name}"

    def read(self, ref: NotebookRef) -> str:
        """The notebook's JSON text; :class:`NotebookNotFound` when it is missing, a link or too large."""
        fs, root = self._fs
        path = f"{root}/{ref.run_dir}/{ref.name}"
        try:
            info = fs.info(path)
        except FileNotFoundError:
            raise NotebookNotFound(
                f"{ref.run_dir}/{ref.name} does not exist (removed, or never written)"
            ) from None
        if info.get("type") != "file" or info.get("islink"):
            raise NotebookNotFound(f"{ref.run_dir}/{ref.name} is not a plain file")
        if self.is_local:
            self._check_no_links(root, ref)
        if (info.get("size") or 0) > MAX_NOTEBOOK_BYTES:
            raise NotebookNotFound(f"{ref.run_dir}/{ref.name} is larger than {MAX_NOTEBOOK_BYTES} bytes")
        return bytes(fs.cat_file(path)).decode("utf-8")

    @staticmethod
    def _check_no_links(root: str, ref: NotebookRef) -> None:
        """A run folder (or the file) that is a symlink could point anywhere on the server."""
        import os

        real_root = os.path.realpath(root)
        expected = os.path.join(real_root, ref.run_dir, ref.name)
        if os.path.realpath(os.path.join(root, ref.run_dir, ref.name)) != expected:
            raise NotebookNotFound(f"{ref.run_dir}/{ref.name} is reached through a symbolic link")

    def existing(self, run_dirs: set[str]) -> set[str]:
        """Paths (as :meth:`path` spells them) of the notebooks still kept in these run folders."""
        fs, root = self._fs
        found: set[str] = set()
        for run_dir in run_dirs:
            if not RUN_DIR.match(run_dir):
                continue
            try:
                names = fs.ls(f"{root}/{run_dir}", detail=False)
            except (FileNotFoundError, NotADirectoryError):
                continue
            found.update(
                f"{self.output_dir}/{run_dir}/{str(name).rstrip('/').rsplit('/', 1)[-1]}" for name in names
            )
        return found

    def remove_older_than(self, days: int, now: datetime | None = None) -> list[str]:
        """Delete executed notebooks last written more than ``days`` ago; the paths removed.

        Only CreditBot's own names are touched; a run folder left empty is removed too (object
        stores have no empty folders to remove).
        """
        fs, root = self._fs
        cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
        try:
            run_dirs = [d for d in fs.ls(root, detail=True) if d.get("type") == "directory"]
        except FileNotFoundError:
            return []
        removed: list[str] = []
        for entry in run_dirs:
            run_path = str(entry["name"]).rstrip("/")
            if not RUN_DIR.match(run_path.rsplit("/", 1)[-1]):
                continue
            kept = 0
            for item in fs.ls(run_path, detail=True):
                name = str(item["name"]).rstrip("/").rsplit("/", 1)[-1]
                if item.get("type") != "file" or not NOTEBOOK_NAME.match(name):
                    kept += 1
                    continue
                modified = fs.modified(item["name"])
                if modified.tzinfo is None:
                    modified = modified.replace(tzinfo=UTC)
                if modified >= cutoff:
                    kept += 1
                    continue
                fs.rm_file(item["name"])
                removed.append(f"{self.output_dir}/{run_path.rsplit('/', 1)[-1]}/{name}")
            if not kept and self.is_local:
                fs.rmdir(run_path)
        if removed:
            log.info(
                "removed %d executed notebook(s) older than %d days from %s",
                len(removed),
                days,
                self.output_dir,
            )
        return removed
