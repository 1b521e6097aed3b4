"""Shared by the tools/build_notebook_*.py scripts: cells as (kind, source) -> a thin .ipynb without outputs.

kind is "markdown", "code" or "parameters" (a code cell tagged ``parameters`` for papermill).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def make_notebook(cells: Iterable[tuple[str, str]]) -> nbformat.NotebookNode:
    built = []
    for kind, source in cells:
        if kind == "markdown":
            built.append(new_markdown_cell(source))
        elif kind in ("code", "parameters"):
            cell = new_code_cell(source)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
            built.append(cell)
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
    nbformat.write(make_notebook(cells), path)
    print("wrote", path)
    return path
