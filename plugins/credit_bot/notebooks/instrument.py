"""The copy of a product notebook that papermill runs: parameters cell tagged, read-out cell appended.

The product's own file is never changed. The copy is content-addressed, so reruns of the same
notebook reuse it, and it is kept on local disk next to the executed notebooks (``.instrumented``
under a local ``output_dir``; a private temporary folder when ``output_dir`` is object storage).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from credit_bot.notebooks.errors import ParametersCellMissing
from credit_bot.notebooks.readout import READOUT_TAG, cell_source

log = logging.getLogger(__name__)


def instrumented_copy(input_nb: str, directory: Path, parameter_names: tuple[str, ...] = ()) -> Path:
    """A copy of ``input_nb`` with the read-out cell appended, content-addressed so reruns reuse it.

    Without a cell tagged ``parameters``, papermill would inject the parameters at the very top and
    the notebook's own ``looker = ""`` would overwrite them; so the cell that declares them (see
    :func:`credit_bot.notebook_check.parameters_cell`) is tagged in the copy, or
    :class:`ParametersCellMissing` says what to change. ``parameter_names`` are the names the bot
    passes (none: nothing is injected, nothing to find). ``input_nb`` is a path or an fsspec URL.
    """
    import nbformat

    from credit_bot.notebook_check import parameters_cell
    from credit_bot.notebook_store import read_text

    nb = nbformat.reads(read_text(input_nb), as_version=4)
    nb.cells = [c for c in nb.cells if READOUT_TAG not in c.get("metadata", {}).get("tags", [])]
    found = parameters_cell(nb, parameter_names) if parameter_names else (-1, True)
    if found is None:
        raise ParametersCellMissing(
            f"notebook {input_nb} has no cell tagged 'parameters' and no cell that only declares "
            f'{", ".join(parameter_names)}: put `{parameter_names[0]} = ""` alone in a code cell and tag it '
            "'parameters' (details: make check-notebook)"
        )
    index, tagged = found
    if not tagged:
        cell = nb.cells[index]
        cell.setdefault("metadata", {}).setdefault("tags", []).append("parameters")
        log.info(
            "%s has no cell tagged 'parameters'; cell %d declares %s, so CreditBot tagged it in its copy: "
            "papermill injects the parameters right after it",
            input_nb,
            index + 1,
            ", ".join(parameter_names),
        )
    cell = nbformat.v4.new_code_cell(cell_source())
    cell.metadata["tags"] = [READOUT_TAG]
    # new_code_cell makes a random id, which would change the digest on every call; notebooks
    # older than nbformat 4.5 have no cell ids at all.
    if nb.get("nbformat_minor", 0) >= 5:
        cell["id"] = READOUT_TAG
    else:
        cell.pop("id", None)
    nb.cells.append(cell)
    return _write_once(nbformat.writes(nb), directory, Path(input_nb).stem)


def _write_once(text: str, directory: Path, stem: str) -> Path:
    """``directory/<stem>.<digest>.ipynb`` holding ``text``, written atomically unless already there."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = directory / f"{stem}.{digest}.ipynb"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(path)
    return path
