"""nbval regression of the numbered notebooks at the `tiny` preset.

Each notebook gets its `tiny` parameters injected by papermill (prepare only, no
execution), then nbval executes it cell by cell (``--nbval-lax``: every cell must
run without error; cells marked ``# NBVAL_CHECK_OUTPUT`` must also reproduce their
stored output).  The notebooks run in order in one shared temporary data/runs
folder, since each stage reads the previous stage's outputs.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib.paths import notebooks_dir

pytestmark = pytest.mark.slow

# (notebook, tiny parameters) in pipeline order.
PIPELINE = [
    ("01_preprocess", {"preset": "tiny"}),
    ("02_autoencoders", {"preset": "tiny"}),
    ("03_train", {"preset": "tiny", "run_name": "nbval-ae"}),
    ("05_evaluate", {"preset": "tiny", "run_name": "nbval"}),
    ("04_ablations", {"preset": "tiny", "grid": "baseline", "parallel": 1}),
    ("06_human_rating", {"preset": "tiny"}),
    ("07_generate", {"run_name": "nbval"}),
]


@pytest.fixture(scope="module")
def shared_outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("nbval")
    env = dict(os.environ)
    env.update(
        VICE_DATA_DIR=str(root / "data"),
        VICE_RUNS_DIR=str(root / "papermill_runs"),
        VICE_FIGURES_DIR=str(root / "figures"),
        MPLBACKEND="Agg",
        PYTHONHASHSEED="0",
    )
    return root, env


@pytest.mark.parametrize("name,parameters", PIPELINE, ids=[name for name, _ in PIPELINE])
def test_notebook_runs_under_nbval(name, parameters, shared_outputs):
    import papermill

    source = notebooks_dir() / f"{name}.ipynb"
    if not source.exists():
        pytest.fail(f"notebook {source} is missing")
    root, env = shared_outputs
    prepared = root / "prepared" / f"{name}.ipynb"
    prepared.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(source), str(prepared), parameters=parameters, prepare_only=True, kernel_name="python3")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider", "--nbval-cell-timeout=900", str(prepared)],
        cwd=prepared.parent, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, f"nbval failed for {name}:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    # nothing generated may land in the source tree
    assert not (Path(notebooks_dir()) / "papermill_runs").exists()


def test_notebooks_are_thin_sources_without_outputs():
    """The notebooks are the source (edited in JupyterLab): committed without outputs, each parameters cell
    followed by its check (test_notebook_parameters), and 03's parameters cell is the shared options' declaration."""
    import nbformat

    from lib.notebook_parameters import parameters_source
    from lib.train.options import parameters_cell

    for path in sorted(Path(notebooks_dir()).glob("*.ipynb")):
        notebook = nbformat.read(str(path), as_version=4)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has outputs; clear them"
    assert parameters_source("03_train").strip() == parameters_cell().strip(), (
        "03_train's parameters cell is not the shared options' declaration: replace it with the output of "
        "`python -c 'from lib.train.options import parameters_cell; print(parameters_cell())'`")
