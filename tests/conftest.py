"""Test-wide settings: nothing a test writes may land in the source tree.

Every test session points the data, runs and figures folders at a temporary
directory (tests may override them further with monkeypatch).
"""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_output_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vice_outputs")
    previous = {k: os.environ.get(k) for k in ("VICE_DATA_DIR", "VICE_RUNS_DIR", "VICE_FIGURES_DIR")}
    os.environ["VICE_DATA_DIR"] = str(root / "data")
    os.environ["VICE_RUNS_DIR"] = str(root / "papermill_runs")
    os.environ["VICE_FIGURES_DIR"] = str(root / "figures")
    yield root
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
