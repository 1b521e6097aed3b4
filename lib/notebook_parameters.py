"""One check of every notebook's parameters, run right after papermill's injected cell.

papermill only warns ("Passed unknown parameter") and injects whatever ``-p`` gives, so a
misspelt name would run the defaults and a ``-p steps 2.5`` would reach torch.  Each notebook's
second code cell calls :func:`check_parameters`, which reads the declared parameters from the
notebook's own ``parameters`` cell (``name: type = default  # help``, the one declaration) and
fails before any work on an unknown name (closest valid name first) or a value of the wrong type.
"""
from __future__ import annotations

import ast
import difflib
import json
from pathlib import Path
from typing import Any, Collection, Mapping

from lib.config import ConfigError, accepts, parse_type, type_names
from lib.paths import notebooks_dir

INJECTED_COMMENT = "# Parameters"  # the first line of the cell papermill injects (its ``comment``)


def parameters_source(notebook: str | Path) -> str:
    """The source of the cell tagged ``parameters`` of ``notebook`` (a name under notebooks/ or a path)."""
    path = Path(notebook)
    if not path.suffix:
        path = notebooks_dir() / f"{notebook}.ipynb"
    cells = [c for c in json.loads(path.read_text())["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path} must have exactly one cell tagged 'parameters', found {len(cells)}")
    source = cells[0]["source"]
    return "".join(source) if isinstance(source, list) else source


def declared_parameters(source: str) -> dict[str, tuple[Any, tuple[type, ...]]]:
    """name -> (default, accepted types) of a parameters cell; the types come from the annotation
    (``steps: int | None = None``) or else from the default's type (a None default needs one)."""
    declared: dict[str, tuple[Any, tuple[type, ...]]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, default = node.target.id, ast.literal_eval(node.value)
            types = parse_type(ast.unparse(node.annotation))
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, default = node.targets[0].id, ast.literal_eval(node.value)
            if default is None:
                raise ValueError(f"parameter {name!r} defaults to None: annotate its type ({name}: int | None = None)")
            types = (type(default),)
        else:
            raise ValueError(f"a parameters cell holds only `name = literal` lines, not: {ast.unparse(node)}")
        declared[name] = (default, types)
    return declared


def injected_names(history: list[str]) -> set[str]:
    """Names assigned by papermill's injected cells among the kernel's executed cells (IPython ``In``)."""
    names: set[str] = set()
    for source in history:
        if source.lstrip().startswith(INJECTED_COMMENT):
            names.update(t.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
                         for t in node.targets if isinstance(t, ast.Name))
    return names


def check_parameters(namespace: Mapping[str, Any], notebook: str | Path, more: Collection[str] = ()) -> None:
    """Fail (ConfigError) before any work on a parameter papermill injected that ``notebook`` does not
    declare, or a declared parameter of the wrong type.  Call it in the cell after the parameters cell
    with ``globals()`` (its ``In`` history holds the injected cell).  ``more``: names the notebook takes besides
    its parameters cell (03: the options of the system it trains; their types are checked where they are used)."""
    declared = declared_parameters(parameters_source(notebook))
    valid = [*declared, *more]
    unknown = injected_names(list(namespace.get("In", []))) - set(valid)
    problems = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
        rest = [n for n in valid if n not in close]
        problems.append(f"unknown parameter {name!r}; valid: {', '.join(close + rest)}")
    for name, (_, types) in declared.items():
        if name not in namespace:
            problems.append(f"parameter {name!r} is not set (run the parameters cell first)")
        elif not accepts(types, namespace[name]):
            value = namespace[name]
            problems.append(f"parameter {name}={value!r} is a {type(value).__name__}; expected {type_names(types)}")
    if problems:
        raise ConfigError(f"{Path(notebook).stem}: " + "; ".join(problems))
