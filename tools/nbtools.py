"""Shared by the tools/build_notebook_*.py scripts: cells as (kind, source) -> a thin .ipynb without outputs.

kind is "markdown", "code" or "parameters" (a code cell tagged ``parameters`` for papermill).  The
parameters cell is followed by a cell that checks the parameters (lib.notebook_parameters): papermill
injects its cell between the two, so an unknown name or a wrong type fails before any work.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


CHECK_CELL = """from lib.notebook_parameters import check_parameters

check_parameters(globals(), {name!r})  # unknown parameter names and wrong types fail here, before any work"""


def make_notebook(cells: Iterable[tuple[str, str]], name: str) -> nbformat.NotebookNode:
    """``name``: the notebook's file stem under notebooks/, whose parameters cell the check reads."""
    built = []
    for kind, source in cells:
        if kind == "markdown":
            built.append(new_markdown_cell(source))
        elif kind in ("code", "parameters"):
            cell = new_code_cell(source)
            built.append(cell)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
                built.append(new_code_cell(CHECK_CELL.format(name=name)))
        else:
            raise ValueError(f"unknown cell kind {kind!r}; valid: markdown, code, parameters")
    for number, cell in enumerate(built):
        # Stable ids: rebuilding an unchanged notebook leaves its file unchanged.
        cell.id = hashlib.sha1(f"{number}:{cell.source}".encode()).hexdigest()[:8]
    notebook = new_notebook(cells=built)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def write_notebook(path: str | Path, cells: Iterable[tuple[str, str]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(make_notebook(cells, path.stem), path)
    print("wrote", path)
    return path
