"""Running the numbered notebooks with papermill: their parameters checked before any work, the kernel
and thread settings, and a failed notebook's error in one line plus its traceback tail."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import traceback
from pathlib import Path
from typing import Any, Collection, Mapping

from lib.config import ConfigError
from lib.paths import notebooks_dir

KERNEL_NAME = "python3"
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def default_train_notebook() -> Path:
    return notebooks_dir() / "03_train.ipynb"


def default_eval_notebook() -> Path:
    return notebooks_dir() / "05_evaluate.ipynb"


def check_kernel(kernel_name: str = KERNEL_NAME) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise RuntimeError(f"papermill needs a Jupyter kernel named {kernel_name!r}; install it with "
                           f"`.venv/bin/python -m ipykernel install --sys-prefix --name {kernel_name}`") from None


def notebook_parameters(notebook: str | Path) -> dict[str, Any]:
    """Names and default values of the notebook's ``parameters`` cell.

    Parsed with ``ast``: papermill's own inspection drops every line whose comment holds an
    ``=`` (e.g. ``x = None  # None = default``).  Defaults that are not literals come back as
    their source text.
    """
    import ast

    import nbformat

    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"notebook not found: {notebook}")
    cells = [c for c in nbformat.read(str(notebook), as_version=4).cells
             if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if not cells:
        raise ConfigError(f"{notebook} has no cell tagged `parameters`, so papermill cannot set its parameters")
    declared: dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Name) and node.value is not None:
                try:
                    declared[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    declared[target.id] = ast.unparse(node.value)
    return declared


class _QuietPapermillParsing(logging.Filter):
    """Drop papermill's parameter-parsing warnings: they are false alarms (see
    :func:`notebook_parameters`) and our own check already failed on real unknowns."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not message.startswith(("Unable to parse line", "Passed unknown parameter"))


_QUIET = _QuietPapermillParsing()


def check_parameters(notebook: str | Path, parameters: Mapping[str, Any], more: Collection[str] = ()) -> None:
    """Fail before any work when the notebook lacks a parameter we would inject (``more``: names it takes besides
    its parameters cell, as 03 takes the options of the system it trains)."""
    declared = notebook_parameters(notebook)
    unknown = sorted(set(parameters) - set(declared) - set(more))
    if unknown:
        raise ConfigError(f"{Path(notebook).name} has no parameters {unknown}; its parameters: {sorted(declared)}")


@contextlib.contextmanager
def limited_threads(threads: int | None):
    """Set the thread-count variables for kernels started inside the block, then restore them."""
    if not threads:
        yield
        return
    saved = {k: os.environ.get(k) for k in THREAD_ENV_VARS}
    os.environ.update({k: str(threads) for k in THREAD_ENV_VARS})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute_notebook(notebook: str | Path, out_dir: str | Path, parameters: Mapping[str, Any],
                     threads: int | None = None, log_output: bool = False) -> Path:
    """Run ``notebook`` with papermill into ``out_dir/<notebook name>``; returns that path.

    The kernel starts in the notebook's own folder, as it would in JupyterLab.
    """
    import papermill

    notebook, out_dir = Path(notebook), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / notebook.name
    for name in ("papermill", "papermill.translators"):
        if _QUIET not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(_QUIET)
    with limited_threads(threads):
        papermill.execute_notebook(str(notebook), str(output), parameters=dict(parameters),
                                   kernel_name=KERNEL_NAME, progress_bar=False, log_output=log_output,
                                   cwd=str(notebook.parent))
    return output


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def describe_error(error: BaseException, tail_lines: int = 25) -> tuple[str, str]:
    """(one-line message, traceback tail) for a failed notebook or any exception."""
    if type(error).__name__ == "PapermillExecutionError":
        message = f"{error.ename}: {error.evalue}"
        lines = "\n".join(error.traceback).splitlines()
    else:
        message = f"{type(error).__name__}: {error}"
        lines = traceback.format_exception(type(error), error, error.__traceback__)
        lines = "".join(lines).splitlines()
    tail = "\n".join(_ANSI.sub("", line) for line in lines[-tail_lines:])
    return message.strip(), tail
