"""Small notebooks written by tests: code cells only, the python3 kernelspec."""

from __future__ import annotations

from pathlib import Path


def write_code_notebook(path: Path, *sources: str) -> Path:
    """A notebook at ``path`` with one code cell per source, runnable by papermill as is."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path
